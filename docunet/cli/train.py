"""docunet-train: train a DocuNet model on DocRED-style JSON or CDR/GDA `.data` files."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import click
import torch
from transformers import AutoTokenizer

from ..checkpoint import encoder_config_dict, load_pretrained_transformer
from ..models.docunet import DOCRED_ENTITY_TYPES, FAMILY, DocuNetConfig
from ..readers import DataSpec, load_documents, load_relation_names, relation_vocab_for
from ..training import TrainArgs, train
from .common import default_of, fail_on_data_error, pick_device

T = functools.partial(default_of, TrainArgs)
C = functools.partial(default_of, DocuNetConfig)


def entity_types_of(docs) -> list[str]:
    types = {m.type for d in docs for e in d.entities for m in e}
    return list(DOCRED_ENTITY_TYPES) if types <= set(DOCRED_ENTITY_TYPES) else sorted(types)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--train", "train_spec", required=True, help="Training data: DocRED JSON/JSONL or CDR/GDA .data; FILE[start:stop] takes a slice of documents.")
@click.option("--dev", "dev_spec", required=True, help="Development data for model selection (same formats).")
@click.option("--test", "test_spec", default=None, help="Optional labelled test data, scored once with the best dev checkpoint.")
@click.option("--encoder", required=True, help="Pretrained encoder: a local path or a hub name.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory (checkpoint + logs).")
@click.option("--rel2id", type=click.Path(exists=True, path_type=Path), default=None, help="rel2id.json (default: beside the data, else the labels found in the data).")
@click.option("--rel-info", type=click.Path(exists=True, path_type=Path), default=None, help="rel_info.json with readable relation names.")
@click.option("--epochs", default=T("epochs"))
@click.option("--batch-size", default=T("batch_size"))
@click.option("--eval-batch-size", default=T("eval_batch_size"))
@click.option("--lr-encoder", default=T("lr_encoder"))
@click.option("--lr-classifier", default=T("lr_classifier"), help="Extractors and bilinear.")
@click.option("--lr-unet", default=T("lr_unet"), help="Feature-map projection and U-Net.")
@click.option("--warmup-ratio", default=T("warmup_ratio"))
@click.option("--max-grad-norm", default=T("max_grad_norm"))
@click.option("--grad-accum", default=T("grad_accum"))
@click.option("--seed", default=T("seed"))
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=T("precision"), help="Autocast precision.")
@click.option("--grid-size", default=C("grid_size"), help="Entity grid N; documents with more entities use larger grids.")
@click.option("--top-k", default=C("top_k"), help="At most k relations per pair at decoding (0: no limit).")
@click.option("--loss", type=click.Choice(["balanced", "adaptive"]), default=C("loss"))
@click.option("--feature-map", type=click.Choice(["context", "similarity"]), default=C("feature_map"))
@click.option("--no-unet", is_flag=True, help="Ablation: a feed-forward layer instead of the U-Net.")
@click.option("--markers", type=click.Choice(["typed", "asterisk"]), default=C("markers"))
@click.option("--unet-channels", default=C("unet_down_channels"), help="U-Net base width d (d -> 2d -> 2d -> d -> d/2).")
@click.option("--emb-size", default=C("emb_size"))
@click.option("--block-size", default=C("block_size"))
@click.option("--max-steps", default=T("max_steps"), help="Stop after this many optimizer steps (0: all epochs).")
@click.option("--stop-after", default=T("stop_after"), help="Stop after this many epochs; the learning-rate schedule stays set for --epochs.")
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", default=0, help="torch CPU threads (0: torch's default).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@fail_on_data_error
def main(train_spec, dev_spec, test_spec, encoder, out_dir, rel2id, rel_info, epochs, batch_size, eval_batch_size,
         lr_encoder, lr_classifier, lr_unet, warmup_ratio, max_grad_norm, grad_accum, seed, precision, grid_size,
         top_k, loss, feature_map, no_unet, markers, unet_channels, emb_size, block_size, max_steps, stop_after, device, threads, quiet):
    """Train DocuNet and keep the checkpoint with the best dev F1."""
    if threads:
        torch.set_num_threads(threads)
    train_path = DataSpec.parse(train_spec)
    train_docs = load_documents(train_path)
    relations = relation_vocab_for(train_docs, train_path.path, rel2id)
    dev_docs = load_documents(dev_spec, relations)
    test_docs = load_documents(test_spec, relations) if test_spec else None
    torch.manual_seed(seed)
    dev = pick_device(device)
    transformer = load_pretrained_transformer(encoder)
    config = DocuNetConfig(
        relations=relations, relation_names=load_relation_names(rel_info), entity_types=entity_types_of(train_docs),
        markers=markers, encoder_name=encoder, encoder_config=encoder_config_dict(transformer),
        max_window=min(C("max_window"), int(getattr(transformer.config, "max_position_embeddings", C("max_window")))),
        feature_map=feature_map, use_unet=not no_unet, unet_down_channels=unet_channels, grid_size=grid_size,
        emb_size=emb_size, block_size=block_size, loss=loss, top_k=top_k,
    )
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    featurizer = FAMILY.make_featurizer(tokenizer, config)
    model = FAMILY.build_model(config, transformer).to(dev)
    args = TrainArgs(epochs=epochs, batch_size=batch_size, eval_batch_size=eval_batch_size, lr_encoder=lr_encoder,
                     lr_classifier=lr_classifier, lr_unet=lr_unet, warmup_ratio=warmup_ratio, max_grad_norm=max_grad_norm,
                     grad_accum=grad_accum, seed=seed, precision=precision, max_steps=max_steps, stop_after=stop_after)
    click.echo(f"train {len(train_docs)} docs ({train_path}), dev {len(dev_docs)} docs, {len(relations)} labels, "
               f"device {dev}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters", err=True)
    summary = train(model, featurizer, train_docs, dev_docs, args, out_dir, test_docs, progress=not quiet)
    click.echo(json.dumps({"best_epoch": summary["best_epoch"], "test": summary.get("test")}, indent=2))


if __name__ == "__main__":
    main()
