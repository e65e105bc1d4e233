"""docunet-run: JSONL documents in, one JSON line of relations per input line out, streaming."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import click
from tqdm.auto import tqdm

from ..runtime import DEFAULT_BATCH_SIZE, BackendUnavailable, Runtime, write_predictions
from ..runtime.reader import read_items
from ..runtime.writer import FORMATS, complete_lines


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("input_path", metavar="INPUT")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A docunet-train checkpoint or a docunet-export directory.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Output file (default: stdout).")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnxruntime", "tensorrt"]), default="auto")
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", help="torch backend autocast.")
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE)
@click.option("--threads", default=0, help="CPU threads per model call (0: library defaults; with --workers, cores // workers).")
@click.option("--workers", default=1, type=click.IntRange(1), help="Batches run at once. On CPUs, --workers 2 (one thread per call) gives more docs/s than one call on 2 threads; 1 gives the lowest latency per batch.")
@click.option("--threshold", type=float, default=None, help="Override the model's decision threshold.")
@click.option("--top-k", type=int, default=None, help="Override the model's top-k (0: no limit).")
@click.option("--grid-fit", type=int, default=None,
              help="Pad each document's entity grid to the smallest multiple of K holding its entities instead of the "
                   "trained grid (42): faster, approximate (see the README's benchmark for the F1 change).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl",
              help="jsonl: one line per input line; docred: a DocRED submission list.")
@click.option("--skip-errors", is_flag=True, help="Exit 0 even when some lines failed.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same --out file.")
@click.option("--no-progress", is_flag=True)
def main(input_path, model_dir, out_path, backend, device, precision, batch_size, threads, workers, threshold, top_k, grid_fit, fmt,
         skip_errors, resume, no_progress):
    """Extract relations from INPUT (JSONL with DocRED keys title/sents/vertexSet, a JSON list, or - for stdin)."""
    if resume and (out_path is None or fmt != "jsonl"):
        raise click.UsageError("--resume needs --out FILE and --format jsonl")
    try:
        rt = Runtime.load(model_dir, backend=backend, device=device, precision=precision, threads=threads or None,
                          grid_fit=grid_fit, workers=workers)
    except (BackendUnavailable, FileNotFoundError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    skip = complete_lines(out_path) if resume else 0
    items = itertools.islice(read_items(input_path), skip, None)
    bar = tqdm(desc=f"docunet-run [{rt.name}]", unit="doc", file=sys.stderr, disable=no_progress, dynamic_ncols=True)
    try:
        summary = write_predictions(rt.predict(items, batch_size=batch_size, threshold=threshold, top_k=top_k), out_path, fmt,
                                    getattr(rt.config, "relation_names", {}), skip=skip, flush_every=batch_size,
                                    on_each=lambda _: bar.update(1))
    finally:
        bar.close()
    click.echo(summary.line(), err=True)
    if summary.failed_lines and not skip_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
