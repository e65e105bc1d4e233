"""docunet-run: documents in, one JSON line of relations per input line out, streaming (a thin layer
over `Runtime.predict` and `runtime.writer.write_predictions`)."""
from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path

import click
from tqdm.auto import tqdm

from ..readers import count_records
from ..runtime import DEFAULT_BATCH_SIZE, Runtime, write_predictions
from ..runtime.backends import BACKENDS
from ..runtime.reader import read_items
from ..runtime.writer import FORMATS, complete_lines, plural
from .common import CONTEXT, Command, INTERRUPTED, DeviceType, InputType, ModelDirType, check_output, clean_errors


class Progress:
    """A bar that moves per batch (not per chunk), knows its total when the input is a file, counts good
    and failed documents, and shows the average rate (so instant error lines cannot inflate it) and an ETA."""

    def __init__(self, total: int | None, name: str, enabled: bool):
        self.bar = tqdm(total=total, desc=f"docunet-run [{name}]", unit="doc", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, smoothing=0)
        self.ok = self.failed = 0
        self._lock = threading.Lock()

    def batch_done(self, n: int) -> None:  # called from worker threads
        with self._lock:
            self.ok += n
            self.bar.update(n)
            self.bar.set_postfix(ok=self.ok, failed=self.failed, refresh=False)

    def written(self, prediction) -> None:
        if prediction.error is None:
            return
        with self._lock:
            self.failed += 1
            if prediction.document is None:  # failed before the model: not counted by a batch yet
                self.bar.update(1)
            else:  # the model failed on it: its batch counted it as done
                self.ok -= 1
            self.bar.set_postfix(ok=self.ok, failed=self.failed, refresh=False)

    def note(self, message: str) -> None:
        self.bar.write(f"warning: {message}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=InputType())
@click.option("--model", "model_dir", required=True, type=ModelDirType(), help="A docunet-train checkpoint or a docunet-export directory.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="Output file (default: stdout).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--backend", type=click.Choice(("auto",) + BACKENDS), default="auto")
@click.option("--device", type=DeviceType(), default="cpu", help="cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", help="torch backend autocast.")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE, help="Documents per model call.")
@click.option("--threads", type=click.IntRange(0), default=0, help="CPU threads per model call (0: library defaults; with --workers, cores // workers).")
@click.option("--workers", default=1, type=click.IntRange(1), help="Batches run at once. On CPUs, --workers 2 (one thread per call) gives more docs/s than one call on 2 threads; 1 gives the lowest latency per batch.")
@click.option("--threshold", type=float, default=None, help="Override the model's decision threshold on the margin (see the README: output fields).")
@click.option("--top-k", type=click.IntRange(0), default=None, help="Override the model's top-k (0: no limit).")
@click.option("--grid-fit", type=click.IntRange(1), default=None,
              help="Pad each document's entity grid to the smallest multiple of K holding its entities instead of the "
                   "trained grid (42): faster, approximate (see the README's benchmark for the F1 change).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl",
              help="jsonl: one line per input line; docred: a DocRED submission list.")
@click.option("--skip-errors", is_flag=True, help="Exit 0 even when some lines failed.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same --out file.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr (the summary line is still printed).")
@clean_errors
def main(input_path, model_dir, out_path, overwrite, backend, device, precision, batch_size, threads, workers, threshold, top_k,
         grid_fit, fmt, skip_errors, resume, no_progress):
    """Extract relations from INPUT: JSONL with DocRED keys (title, sents, vertexSet), a JSON list, a CDR/GDA
    .data file, FILE[start:stop] for a slice of its documents, or - for stdin."""
    if resume and (out_path is None or fmt != "jsonl"):
        raise click.UsageError("--resume needs --out FILE and --format jsonl")
    check_output(out_path, overwrite=overwrite, append=resume)
    rt = Runtime.load(model_dir, backend=backend, device=device, precision=precision, threads=threads or None,
                      grid_fit=grid_fit, workers=workers)
    skip = complete_lines(out_path) if resume else 0
    total = count_records(input_path)
    progress = Progress(None if total is None else max(0, total - skip), rt.name, enabled=not no_progress)
    rt.on_note = progress.note
    items = itertools.islice(read_items(input_path), skip, None)
    try:
        summary = write_predictions(rt.predict(items, batch_size=batch_size, threshold=threshold, top_k=top_k,
                                               on_batch=progress.batch_done),
                                    out_path, fmt, getattr(rt.config, "relation_names", {}), skip=skip, flush_every=batch_size,
                                    on_each=progress.written)
    except KeyboardInterrupt:
        progress.close()
        done = (complete_lines(out_path) - skip) if out_path is not None and fmt == "jsonl" else None
        where = f"after {plural(done, 'document')}; continue with the same command and --resume" if done is not None else ""
        click.echo(f"docunet-run: interrupted {where}".rstrip(), err=True)
        sys.exit(INTERRUPTED)
    finally:
        progress.close()
    click.echo(summary.line(), err=True)
    for message, count in rt.notes.items():
        click.echo(f"  note: {message} ({plural(count, 'mention')})", err=True)
    if summary.failed_lines and not skip_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
