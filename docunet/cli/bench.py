"""docunet-bench: measure backends side by side on the same documents."""
from __future__ import annotations

from pathlib import Path

import click

from ..bench import run_all

DEFAULT_DOCS = str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "docred" / "test.json")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--model", "checkpoint", required=True, type=click.Path(exists=True, file_okay=False), help="A docunet-train checkpoint.")
@click.option("--docs", default=DEFAULT_DOCS, help="Documents to run (DocRED JSON/JSONL, FILE[a:b] slices work).")
@click.option("--n-docs", default=200, help="How many of them.")
@click.option("--backends", default="torch-eager,torch,torch-bf16",
              help="Comma-separated: torch-eager (the reference), torch, torch-bf16, torch-fp16, onnxruntime@EXPORT_DIR; "
                   "a +fitK suffix pads each document's grid to a multiple of K (e.g. onnxruntime@DIR+fit8).")
@click.option("--batch-sizes", default="1,8,32")
@click.option("--device", default="cpu")
@click.option("--threads", default=0, help="CPU threads per backend (0: all cores).")
@click.option("--eval-data", default=None, help="Labelled data: report each backend's F1 (e.g. a Re-DocRED slice).")
@click.option("--train-facts", default=None, help="Training data for Ign F1.")
@click.option("--soak", default=0, help="Also stream this many documents through --soak-backend and sample memory.")
@click.option("--soak-backend", default=None, help="Backend name for the soak run (e.g. onnxruntime-int8).")
@click.option("--rounds", default=1, type=click.IntRange(1), help="Measure every backend this many times, round-robin, "
              "and report the median round (for noisy shared machines); F1 and the soak run once.")
@click.option("--out", "out_dir", default="bench-results", type=click.Path(file_okay=False, path_type=Path))
def main(checkpoint, docs, n_docs, backends, batch_sizes, device, threads, eval_data, train_facts, soak, soak_backend, rounds, out_dir):
    """Writes OUT/bench.json, OUT/bench.md and OUT/bench.png."""
    report = run_all(checkpoint, [b.strip() for b in backends.split(",") if b.strip()], docs, n_docs,
                     [int(b) for b in batch_sizes.split(",")], device, threads, out_dir, eval_data, train_facts, soak, soak_backend,
                     log=lambda m: click.echo(m, err=True), rounds=rounds)
    click.echo((out_dir / "bench.md").read_text())
    if any("error" in r for r in report["results"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
