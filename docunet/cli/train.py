"""docunet-train: train a DocuNet model on DocRED-style JSON or CDR/GDA `.data` files."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import click
import torch

from ..artifacts import is_checkpoint
from ..checkpoint import encoder_config_dict, load_pretrained_transformer, load_tokenizer
from ..models import get_family
from ..models.docunet import DOCRED_ENTITY_TYPES, DocuNetConfig
from ..models.plmarker import PLMarkerNERConfig
from ..models.plmarker.modeling import init_markers_from_words
from ..models.plmarker.re_config import PLMarkerREConfig, default_symmetric
from ..models.plmarker.re_modeling import init_re_markers
from ..readers import DataSpec, load_documents, load_relation_names, relation_vocab_for
from ..training import TrainArgs, train
from .common import CONTEXT, Command, DeviceType, InputType, clean_errors, default_of, pick_device

T = functools.partial(default_of, TrainArgs)
C = functools.partial(default_of, DocuNetConfig)
P = functools.partial(default_of, PLMarkerNERConfig)
R = functools.partial(default_of, PLMarkerREConfig)


def entity_types_of(docs) -> list[str]:
    types = {m.type for d in docs for e in d.entities for m in e}
    return list(DOCRED_ENTITY_TYPES) if types <= set(DOCRED_ENTITY_TYPES) else sorted(types)


@click.command(cls=Command, context_settings=CONTEXT)
@click.option("--train", "train_specs", required=True, multiple=True, type=InputType(stdin=False),
              help="Training data: DocRED JSON/JSONL, CDR/GDA .data or SciERC (DyGIE) JSONL; FILE[start:stop] takes a slice of "
                   "documents. Repeat it to train on several files (their documents in the order given).")
@click.option("--dev", "dev_spec", required=True, type=InputType(stdin=False), help="Development data for model selection (same formats).")
@click.option("--test", "test_spec", default=None, type=InputType(stdin=False), help="Optional labelled test data, scored once with the best dev checkpoint.")
@click.option("--encoder", required=True, help="Pretrained encoder: a local path or a hub name.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory (checkpoint + logs).")
@click.option("--rel2id", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="rel2id.json (default: beside the first --train file, else the labels found in the training data).")
@click.option("--rel-info", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="rel_info.json with readable relation names.")
@click.option("--epochs", type=click.IntRange(1), default=T("epochs"))
@click.option("--batch-size", type=click.IntRange(1), default=T("batch_size"))
@click.option("--eval-batch-size", type=click.IntRange(1), default=T("eval_batch_size"))
@click.option("--lr-encoder", type=click.FloatRange(0, min_open=True), default=T("lr_encoder"))
@click.option("--lr-classifier", type=click.FloatRange(0, min_open=True), default=T("lr_classifier"), help="Extractors and bilinear.")
@click.option("--lr-unet", type=click.FloatRange(0, min_open=True), default=T("lr_unet"), help="Feature-map projection and U-Net.")
@click.option("--warmup-ratio", type=click.FloatRange(0, 1), default=T("warmup_ratio"))
@click.option("--max-grad-norm", type=click.FloatRange(0, min_open=True), default=T("max_grad_norm"))
@click.option("--grad-accum", type=click.IntRange(1), default=T("grad_accum"))
@click.option("--seed", default=T("seed"))
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=T("precision"), help="Autocast precision.")
@click.option("--grid-size", type=click.IntRange(4), default=C("grid_size"), help="Entity grid N; documents with more entities use larger grids.")
@click.option("--top-k", type=click.IntRange(0), default=C("top_k"), help="At most k relations per pair at decoding (0: no limit).")
@click.option("--loss", type=click.Choice(["balanced", "adaptive"]), default=C("loss"))
@click.option("--feature-map", type=click.Choice(["context", "similarity"]), default=C("feature_map"))
@click.option("--no-unet", is_flag=True, help="Ablation: a feed-forward layer instead of the U-Net.")
@click.option("--markers", type=click.Choice(["typed", "asterisk"]), default=C("markers"))
@click.option("--unet-channels", type=click.IntRange(2), default=C("unet_down_channels"), help="U-Net base width d (d -> 2d -> 2d -> d -> d/2).")
@click.option("--emb-size", type=click.IntRange(1), default=C("emb_size"))
@click.option("--block-size", type=click.IntRange(1), default=C("block_size"))
@click.option("--max-steps", type=click.IntRange(0), default=T("max_steps"), help="Stop after this many optimizer steps (0: all epochs).")
@click.option("--stop-after", type=click.IntRange(0), default=T("stop_after"), help="Stop after this many epochs; the learning-rate schedule stays set for --epochs.")
@click.option("--keep-last", is_flag=True, help="Keep the last epoch's checkpoint, not the best dev F1: for training on every "
              "labelled document, when the dev data are not held out.")
@click.option("--device", type=DeviceType(), default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(0), default=0, help="torch CPU threads (0: torch's default).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--overwrite", is_flag=True, help="Train into an --out directory that already holds a checkpoint (it is replaced).")
@click.option("--model-type", type=click.Choice(["docunet", "plmarker-ner", "plmarker-re"]), default="docunet",
              help="docunet: document-level relations between the given entities; plmarker-ner: entity mentions (spans) from text; "
                   "plmarker-re: sentence-level relations between the given entity spans (PL-Marker, SciERC / DyGIE data).")
@click.option("--max-seq-length", type=click.IntRange(16), default=None,
              help=f"plmarker-ner / plmarker-re: word pieces of an instance's text window (default {P('max_seq_length')} / {R('max_seq_length')}).")
@click.option("--max-pair-length", type=click.IntRange(1), default=None,
              help=f"plmarker-ner: candidate spans packed per instance (K, default {P('max_pair_length')}); plmarker-re: objects "
                   f"packed per subject instance (default {R('max_pair_length')}).")
@click.option("--type-markers", is_flag=True, help="plmarker-re: subject and object markers specific to the entity type (--use_typemarker).")
@click.option("--max-span-width", type=click.IntRange(1), default=P("max_span_width"), help="plmarker-ner: longest candidate span in words (W).")
@click.option("--negative-ratio", type=click.FloatRange(0, 1, min_open=True), default=P("train_negative_ratio"),
              help="plmarker-ner: fraction of non-entity candidate spans kept for training (1: all, as the original).")
@click.option("--nested", is_flag=True, help="plmarker-ner: allow overlapping spans of different types (SciERC); default flat (DocRED).")
@click.option("--shape-features/--no-shape-features", default=P("shape_features"),
              help="plmarker-ner: word shapes (capitalised, all caps, digits...) of a span's words as extra span features.")
@click.option("--prune-ratio", type=click.FloatRange(0), default=P("prune_ratio"),
              help="plmarker-ner: at inference (dev and test included) score only the best ceil(R x words) candidates of each "
                   "text window by the boundary scorer (0: every candidate).")
@clean_errors
def main(train_specs, dev_spec, test_spec, encoder, out_dir, rel2id, rel_info, epochs, batch_size, eval_batch_size,
         lr_encoder, lr_classifier, lr_unet, warmup_ratio, max_grad_norm, grad_accum, seed, precision, grid_size,
         top_k, loss, feature_map, no_unet, markers, unet_channels, emb_size, block_size, max_steps, stop_after, keep_last, device, threads, quiet, overwrite,
         model_type, max_seq_length, max_pair_length, type_markers, max_span_width, negative_ratio, nested, shape_features, prune_ratio):
    """Train a model (DocuNet document-level relations, PL-Marker entity mentions or PL-Marker sentence-level relations)
    and keep the checkpoint with the best dev F1 (or the last epoch with --keep-last)."""
    if emb_size % block_size:
        raise click.BadParameter(f"--emb-size {emb_size} must be a multiple of --block-size {block_size}", param_hint="--emb-size")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise click.BadParameter(f"{out_dir}: is a file, not a directory", param_hint="--out")
    if (is_checkpoint(out_dir) or (out_dir / "train_log.jsonl").exists()) and not overwrite:
        raise click.BadParameter(f"{out_dir}: already holds a training run; pass --overwrite to replace it", param_hint="--out")
    if threads:
        torch.set_num_threads(threads)
    train_paths = [DataSpec.parse(spec) for spec in train_specs]
    train_docs = [doc for path in train_paths for doc in load_documents(path)]
    if model_type != "plmarker-ner":  # relation models learn from labels; an entity model reads only the mentions
        unlabelled = next((d for d in train_docs if d.relations is None), None)
        if unlabelled is not None:
            raise click.BadParameter(f"{unlabelled.source}: document {unlabelled.title!r} has no relation labels (`labels`); "
                                     f"{model_type} trains on labelled documents only", param_hint="--train")
    relations = relation_vocab_for(train_docs, train_paths[0].path, rel2id)
    checked = relations if model_type == "docunet" else None  # entity models read mentions; relation labels are not theirs to check
    dev_docs = load_documents(dev_spec, checked)
    test_docs = load_documents(test_spec, checked) if test_spec else None
    torch.manual_seed(seed)
    dev = pick_device(device)
    try:
        transformer = load_pretrained_transformer(encoder)
        tokenizer = load_tokenizer(encoder)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{encoder}: cannot load a pretrained encoder from it ({str(exc).splitlines()[0]})",
                                 param_hint="--encoder") from exc
    family = get_family(model_type)
    defaults = R if model_type == "plmarker-re" else P
    max_seq_length = max_seq_length or defaults("max_seq_length")
    max_pair_length = max_pair_length or defaults("max_pair_length")
    if model_type == "plmarker-re":
        labels = sorted({r.label for d in train_docs for r in (d.relations or [])})
        config = PLMarkerREConfig(relations=labels, symmetric=default_symmetric(labels), entity_types=entity_types_of(train_docs),
                                  encoder_name=encoder, encoder_config=encoder_config_dict(transformer), max_seq_length=max_seq_length,
                                  max_pair_length=max_pair_length, type_markers=type_markers)
    elif model_type == "plmarker-ner":
        config = PLMarkerNERConfig(entity_types=entity_types_of(train_docs), encoder_name=encoder,
                                   encoder_config=encoder_config_dict(transformer), max_seq_length=max_seq_length,
                                   max_pair_length=max_pair_length, max_span_width=max_span_width, nested=nested,
                                   train_negative_ratio=negative_ratio, shape_features=shape_features, prune_ratio=prune_ratio)
    else:
        config = docunet_config(train_docs, relations, rel_info, encoder, transformer, markers, feature_map, no_unet, unet_channels,
                                grid_size, emb_size, block_size, loss, top_k)
    featurizer = family.make_featurizer(tokenizer, config)
    model = family.build_model(config, transformer).to(dev)
    if model_type == "plmarker-ner":
        init_markers_from_words(transformer, tokenizer, featurizer.start_marker, featurizer.end_marker)
    elif model_type == "plmarker-re":
        init_re_markers(transformer, tokenizer, featurizer.marker_ids)
    args = TrainArgs(epochs=epochs, batch_size=batch_size, eval_batch_size=eval_batch_size, lr_encoder=lr_encoder,
                     lr_classifier=lr_classifier, lr_unet=lr_unet, warmup_ratio=warmup_ratio, max_grad_norm=max_grad_norm,
                     grad_accum=grad_accum, seed=seed, precision=precision, max_steps=max_steps, stop_after=stop_after,
                     keep_last=keep_last)
    click.echo(f"{model_type}: train {len(train_docs)} docs ({' + '.join(map(str, train_paths))}), dev {len(dev_docs)} docs, device {dev}, "
               f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters", err=True)
    summary = train(model, featurizer, train_docs, dev_docs, args, out_dir, test_docs, progress=not quiet)
    click.echo(json.dumps({"best_epoch": summary["best_epoch"], "test": summary.get("test")}, indent=2))


def docunet_config(train_docs, relations, rel_info, encoder, transformer, markers, feature_map, no_unet, unet_channels, grid_size,
                   emb_size, block_size, loss, top_k) -> DocuNetConfig:
    return DocuNetConfig(
        relations=relations, relation_names=load_relation_names(rel_info), entity_types=entity_types_of(train_docs),
        markers=markers, encoder_name=encoder, encoder_config=encoder_config_dict(transformer),
        max_window=min(C("max_window"), int(getattr(transformer.config, "max_position_embeddings", C("max_window")))),
        feature_map=feature_map, use_unet=not no_unet, unet_down_channels=unet_channels, grid_size=grid_size,
        emb_size=emb_size, block_size=block_size, loss=loss, top_k=top_k,
    )


if __name__ == "__main__":
    main()
