"""docunet-bench: measure backends side by side on the same documents."""
from __future__ import annotations

from pathlib import Path

import click

from ..artifacts import is_export
from ..bench import Spec, run_all
from .common import CONTEXT, Command, DeviceType, InputType, ModelDirType, clean_errors


def _positive_ints(ctx, param, text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated positive integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected comma-separated positive integers, got {text!r}")
    return values


def _backends(ctx, param, text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names:
        raise click.BadParameter("no backend given")
    seen: dict[str, str] = {}
    for name in names:
        if name.startswith("onnxruntime@"):
            path = Path(name.split("@", 1)[1].split("+", 1)[0])
            if not is_export(path):
                raise click.BadParameter(f"{name}: {path} is not a docunet-export directory (no manifest.json)")
        try:
            label = Spec.parse(name, ".").name
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        if label in seen:  # e.g. +weights=as-exported where the export's weights already fit this CPU
            raise click.BadParameter(f"{seen[label]} and {name} both run {label} on this CPU")
        seen[label] = name
    return names


@click.command(cls=Command, context_settings=CONTEXT)
@click.option("--model", "checkpoint", required=True, type=ModelDirType(export=False), help="A docunet-train checkpoint.")
@click.option("--docs", required=True, type=InputType(stdin=False),
              help="Documents to run: DocRED JSON/JSONL, FILE[a:b] slices work (e.g. ../shared/data/docred/test.json).")
@click.option("--n-docs", type=click.IntRange(1), default=200, help="How many of them.")
@click.option("--backends", default="torch-eager,torch,torch-bf16", callback=_backends,
              help="Comma-separated: torch-eager (the reference), torch, torch-bf16, torch-fp16, torch-auto (bf16 with AMX), "
                   "onnxruntime@EXPORT_DIR. Suffixes: +fitK pads each document's grid to a multiple of K, +wK runs K batches "
                   "at once (K workers), +weights=as-exported|w7 serves an int8 export's own or 7-bit weights instead of "
                   "those that fit this CPU (auto), e.g. onnxruntime@DIR+weights=w7+fit14+w2.")
@click.option("--batch-sizes", default="1,8,32", callback=_positive_ints, help="Comma-separated batch sizes.")
@click.option("--device", type=DeviceType(), default="cpu", help="cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(0), default=0, help="CPU threads per backend (0: all cores).")
@click.option("--eval-data", type=InputType(stdin=False), default=None, help="Labelled data: report each backend's score (e.g. a Re-DocRED slice).")
@click.option("--train-facts", type=InputType(stdin=False), default=None, help="Training data for Ign F1.")
@click.option("--soak", type=click.IntRange(0), default=0, help="Also stream this many documents through --soak-backend and sample memory.")
@click.option("--soak-backend", default=None, help="Backend name for the soak run, as the table names it (e.g. onnxruntime-int8).")
@click.option("--rounds", default=1, type=click.IntRange(1), help="Measure every backend this many times, round-robin, "
              "and report the median round (for noisy shared machines); F1 and the soak run once.")
@click.option("--out", "out_dir", default="bench-results", type=click.Path(file_okay=False, path_type=Path))
@clean_errors
def main(checkpoint, docs, n_docs, backends, batch_sizes, device, threads, eval_data, train_facts, soak, soak_backend, rounds, out_dir):
    """Writes OUT/bench.json, OUT/bench.md and OUT/bench.png."""
    if soak and soak_backend is None:
        raise click.BadParameter("--soak needs --soak-backend NAME (a backend's name in the table)", param_hint="--soak-backend")
    report = run_all(str(checkpoint), backends, docs, n_docs, batch_sizes, device, threads, out_dir, eval_data, train_facts, soak,
                     soak_backend, log=lambda m: click.echo(m, err=True), rounds=rounds)
    click.echo((out_dir / "bench.md").read_text())
    if any("error" in r for r in report["results"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
