"""docunet-export: a checkpoint -> its ONNX graphs (+ TensorRT engines), validated, with a manifest."""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import click
import torch
from tqdm.auto import tqdm

from ..artifacts import CONFIG_FILE, ManifestError
from ..engines.tensorrt import TensorRTUnavailable, TrtSettings
from ..export import ExportError, ExportOptions, ParityError, export_checkpoint
from ..export.exporter import PRECISIONS
from ..coref.rules import DEFAULT_RULES, with_rule_settings
from ..models import family_of, load_config
from ..pipeline.bundle import write_bundle
from ..runtime.runtime import apply_settings
from .common import CONTEXT, Command, InputType, ModelDirType, SettingType, clean_errors, default_of, runtime_settings

E = functools.partial(default_of, ExportOptions)
TRT = functools.partial(default_of, TrtSettings)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected positive integers, got {text!r}")
    return values


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class StageBar:
    """Progress: a tqdm bar over the export's stages on a terminal (inner progress, such as documents
    validated or engines built, as its postfix); one line per stage when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, desc="export", unit="step", disable=not (enabled and self.tty), dynamic_ncols=True,
                        bar_format="{desc}: {n_fmt}/{total_fmt} steps |{bar}| {elapsed} {postfix}", file=sys.stderr)
        self.stage: str | None = None

    def __call__(self, stage: str, n: int, total: int) -> None:
        if total == 0:  # a new stage
            if self.stage is not None:
                self.bar.update(1)
            self.stage = stage
            self.bar.set_description_str(stage)
            self.bar.set_postfix_str("")
            if self.enabled and not self.tty:
                click.echo(f"[{time.perf_counter() - self.t0:7.1f} s] {stage}", err=True)
        else:
            self.bar.set_postfix_str(f"{stage}: {n}/{total}")

    def close(self) -> None:
        if self.stage is not None:
            self.bar.update(1)
            self.stage = None
        self.bar.close()


def _summary(result, quiet: bool) -> None:
    m = result.manifest
    echo = click.echo
    echo(f"exported {m['source_checkpoint']['path']} -> {result.directory} ({m['precision']}) in {result.seconds:.1f} s")
    if not quiet:
        for stage, sec in result.stage_seconds.items():
            echo(f"  {stage:<32} {sec:8.1f} s")
    echo("files:")
    total = 0
    for name, size in result.files.items():
        total += size
        echo(f"  {name:<40} {_size(size):>10}")
    echo(f"  {'total':<40} {_size(total):>10}")
    v = m["validation"]
    s = v["samples"]
    echo(f"validation ({v['precision']}, {s['documents']} sample documents): max |logit diff| {s['max_abs_logit_diff']:.3g}, "
         f"pair agreement {s['pair_agreement']:.4f}, label agreement {s['label_agreement']:.5f}, "
         f"fact agreement {s['fact_agreement']:.4f} ({s['facts_reference']} vs {s['facts_exported']} facts)")
    if v.get("eval"):
        e = v["eval"]
        pt, ex = e["pytorch"], e["exported"]
        echo(f"eval data ({e['documents']} documents): max |logit diff| {e['max_abs_logit_diff']:.3g}, pair agreement "
             f"{e['pair_agreement']:.4f}, fact agreement {e['fact_agreement']:.4f}")
        f1, second = family_of(load_config(Path(result.directory) / CONFIG_FILE)).score_names
        echo(f"  {f1} PyTorch {pt['f1']:.4f} ({second} {pt['ign_f1']:.4f})  exported {ex['f1']:.4f} ({second} {ex['ign_f1']:.4f})  "
             f"difference {ex['f1'] - pt['f1']:+.4f}")
    for role, c in m["tensorrt"]["compatibility"].items():
        state = "compatible" if c["compatible"] else "NOT compatible: " + "; ".join(c["problems"][:5])
        echo(f"TensorRT check, {role}: {state}")
    if m["tensorrt"].get("engines"):
        for role, e in m["tensorrt"]["engines"]["engines"].items():
            echo(f"TensorRT engine {e['file']}: {len(e['profiles'])} profiles, built in {e['build_seconds']:.1f} s")


@click.command(cls=Command, context_settings=CONTEXT)
@click.option("--checkpoint", required=True, type=ModelDirType(export=False), help="A docunet-train checkpoint directory.")
@click.option("--ner", "ner_checkpoint", type=ModelDirType(export=False), default=None,
              help="A PL-Marker NER checkpoint: export both models into a pipeline bundle (OUT/ner, OUT/relations, "
                   "OUT/pipeline.json with the coreference rules), which docunet-run --model OUT serves on raw text.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory (new, empty, or a previous export to replace).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=E("precision"),
              help="fp32; fp16 for GPUs (LayerNorm, softmax, logsumexp, final logits kept fp32); int8 for CPUs (dynamic per-channel weights, encoder).")
@click.option("--int8-head", is_flag=True, help="With --precision int8: also quantize the head (static QDQ Conv/MatMul, calibrated on --sample-data or --eval-data).")
@click.option("--int8-weight-bits", type=click.Choice(["7", "8"]), default="7" if E("int8_reduce_range") else "8",
              help="With --precision int8: 8 (default) keeps the full weights, accurate on CPUs with VNNI/AMX and ARM; "
                   "on CPUs without VNNI (AVX2), where they saturate int16 sums, the runtime requantizes them to 7 bits "
                   "at load. 7 fixes 7-bit weights for every CPU (0.62 dev F1 lower on AMX).")
@click.option("--int8-embedding-bits", type=click.Choice(["32", "8", "4"]), default=str(E("int8_embedding_bits")),
              help="With --precision int8: the word and position embedding tables (most of an encoder's bytes) as 8-bit rows, "
                   "4-bit blocks (half the bytes again; check the validation report) or 32 (fp32).")
@click.option("--ort-fusions/--no-ort-fusions", default=None,
              help="Fuse the encoder for ONNX Runtime (MultiHeadAttention, SkipLayerNorm, BiasGelu contrib ops; exact). "
                   "Default: on for int8, off for fp32 (the plain fp32 graph also builds TensorRT engines).")
@click.option("--opset", type=click.IntRange(18, 24), default=E("opset"), help="ONNX opset (the dynamo exporter needs >= 18; TensorRT parses 9..24).")
@click.option("--eval-data", type=InputType(stdin=False), default=None, help="Labelled data (FILE or FILE[start:stop]): F1 of the exported and the PyTorch model.")
@click.option("--train-facts", "facts_spec", type=InputType(stdin=False), default=None, help="Training data whose facts Ign F1 ignores (FILE or FILE[start:stop]).")
@click.option("--sample-data", type=InputType(stdin=False), default=None, help="Extra documents for the parity check (synthetic long / many-entity documents are always used).")
@click.option("--sample-limit", type=click.IntRange(0), default=E("sample_limit"), help="At most this many documents from --sample-data.")
@click.option("--batch-size", type=click.IntRange(1), default=E("batch_size"), help="Documents per batch during validation (padded batches).")
@click.option("--threads", type=click.IntRange(1), default=None, help="Threads for ONNX Runtime and the PyTorch reference (default: the libraries' choice).")
@click.option("--tolerance", type=float, default=E("tolerance"), help="fp32: largest allowed |logit difference| to PyTorch.")
@click.option("--fp32-from", type=ModelDirType(checkpoint=False), default=None,
              help="Reuse the graphs of an fp32 export of the same checkpoint instead of exporting again.")
@click.option("--tensorrt", is_flag=True, help="Also build TensorRT engines (needs TensorRT 10.12+ and a GPU).")
@click.option("--seq-buckets", default=",".join(map(str, TRT("seq_buckets"))), help="TensorRT: encoder window-length buckets, one profile each.")
@click.option("--doc-buckets", default=",".join(map(str, TRT("doc_buckets"))), help="TensorRT: head document-length buckets, one profile each.")
@click.option("--max-windows", type=click.IntRange(1), default=TRT("max_windows"), help="TensorRT: largest encoder batch (windows).")
@click.option("--max-docs", type=click.IntRange(1), default=TRT("max_docs"), help="TensorRT: largest head batch (documents).")
@click.option("--max-grid", type=click.IntRange(4), default=None, help="TensorRT: largest grid N (default grid_size + 2 * grid_step).")
@click.option("--workspace-gb", type=click.FloatRange(0, min_open=True), default=TRT("workspace_gb"), help="TensorRT: builder workspace.")
@click.option("--timing-cache", type=click.Path(path_type=Path), default=None, help="TensorRT: timing cache file (default OUT/tensorrt/timing.cache).")
@click.option("--tf32", is_flag=True, help="TensorRT: allow TF32 in fp32 engines (faster, not bit-close to fp32).")
@click.option("--setting", "setting_pairs", type=SettingType(), multiple=True,
              help="With --ner, repeatable: ner.KEY=VALUE, a serve-time setting of the entity model (e.g. "
                   "ner.prior_correction=0.25), or coref.KEY=VALUE, a coreference rule (e.g. coref.cross_type=none), recorded "
                   "in the bundle's pipeline.json; docunet-run --setting still overrides them.")
@click.option("--quiet", is_flag=True, help="No progress display, a shorter summary.")
@clean_errors
def main(checkpoint, ner_checkpoint, out_dir, precision, int8_head, int8_weight_bits, int8_embedding_bits, ort_fusions, opset, eval_data, facts_spec, sample_data, sample_limit, batch_size, threads,
         tolerance, fp32_from, tensorrt, seq_buckets, doc_buckets, max_windows, max_docs, max_grid, workspace_gb,
         timing_cache, tf32, setting_pairs, quiet):
    """Export a checkpoint as ONNX graphs (DocuNet: encoder.onnx + head.onnx; PL-Marker NER: text.onnx + spans.onnx; PL-Marker
    relations: text.onnx + objects.onnx), validate them against PyTorch and write manifest.json; with --ner, a pipeline
    bundle of an entity and a relation model (no coreference step for a sentence-level relation model, plmarker-re)."""
    if threads:
        torch.set_num_threads(threads)  # the PyTorch reference of the validation, too
    settings = TrtSettings(seq_buckets=_ints(seq_buckets), doc_buckets=_ints(doc_buckets), max_windows=max_windows,
                           opt_windows=min(TRT("opt_windows"), max_windows), max_docs=max_docs, opt_docs=min(TRT("opt_docs"), max_docs), max_grid=max_grid,
                           workspace_gb=workspace_gb, tf32=tf32, timing_cache=str(timing_cache) if timing_cache else None)
    try:
        options = ExportOptions(precision=precision, int8_head=int8_head, int8_reduce_range=int8_weight_bits == "7",
                                int8_embedding_bits=int(int8_embedding_bits),
                                ort_fusions=ort_fusions, opset=opset, eval_data=eval_data, train_facts=facts_spec,
                                sample_data=sample_data, sample_limit=sample_limit, batch_size=batch_size, threads=threads,
                                tolerance=tolerance, tensorrt=tensorrt, trt=settings,
                                fp32_from=str(fp32_from) if fp32_from else None)
    except ExportError as exc:
        raise click.UsageError(str(exc)) from exc
    steps = (5 + (1 if fp32_from else 2) + (2 if precision != "fp32" else 0) + (1 if tensorrt else 0)
             + (1 if options.ort_fusions else 0))
    parts = [(checkpoint, out_dir)] if ner_checkpoint is None else [(ner_checkpoint, out_dir / "ner"), (checkpoint, out_dir / "relations")]
    relations = family_of(load_config(Path(checkpoint) / CONFIG_FILE))
    if ner_checkpoint is not None:
        ner_config = load_config(Path(ner_checkpoint) / CONFIG_FILE)
        if ner_config.model_type != "plmarker-ner":
            raise click.BadParameter(f"{ner_checkpoint}: is not a plmarker-ner checkpoint", param_hint="--ner")
        if relations.output != "relations":
            raise click.BadParameter(f"{checkpoint}: is a {relations.model_type} checkpoint; a bundle's --checkpoint is a relation "
                                     "model (docunet or plmarker-re)", param_hint="--checkpoint")
    keywords = runtime_settings(setting_pairs)
    ner_settings = keywords.pop("ner_settings", {})
    coref_settings = keywords.pop("coref_settings", {})
    if keywords or ((ner_settings or coref_settings) and ner_checkpoint is None):
        raise click.BadParameter("export records only a bundle's settings: ner.KEY=VALUE (entity model) and "
                                 "coref.KEY=VALUE (coreference rules), with --ner", param_hint="--setting")
    if coref_settings and relations.sentence_level:
        raise click.BadParameter(f"{checkpoint}: a sentence-level relation model's bundle has no coreference step; "
                                 "coref.* settings do not apply", param_hint="--setting")
    try:
        coref = with_rule_settings(DEFAULT_RULES, coref_settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--setting") from exc
    if ner_settings:  # checked before minutes of export, as docunet-run would check them
        try:
            apply_settings(ner_config, ner_settings, ner_config.model_type)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--setting") from exc
    for part_checkpoint, part_out in parts:
        _export_one(part_checkpoint, part_out, options, steps, quiet)
    if ner_checkpoint is not None:
        write_bundle(out_dir, coref=None if relations.sentence_level else coref, ner_settings=ner_settings)
        click.echo(f"pipeline bundle: {out_dir} (ner/, relations/, pipeline.json); serve it with docunet-run --model {out_dir}")


def _export_one(checkpoint: Path, out_dir: Path, options: ExportOptions, steps: int, quiet: bool) -> None:
    bar = StageBar(steps, enabled=not quiet)
    t0 = time.perf_counter()
    try:
        result = export_checkpoint(checkpoint, out_dir, options, progress=bar)
    except TensorRTUnavailable as exc:
        bar.close()
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    except ParityError as exc:
        bar.close()
        click.echo(f"error: export failed validation after {time.perf_counter() - t0:.1f} s: {exc}", err=True)
        sys.exit(1)
    except (ExportError, ManifestError) as exc:
        bar.close()
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    bar.close()
    _summary(result, quiet)


if __name__ == "__main__":
    main()
