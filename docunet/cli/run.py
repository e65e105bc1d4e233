"""docunet-run: documents in, one JSON line of relations per input line out, streaming (a thin layer
over `Runtime.predict` and `runtime.writer.write_predictions`)."""
from __future__ import annotations

import itertools
import json
import sys
import threading
from pathlib import Path

import click
from tqdm.auto import tqdm

from ..artifacts import CONFIG_FILE, MANIFEST_FILE, is_export
from ..coref.rules import with_rule_settings
from ..models import load_config
from ..pipeline.bundle import is_pipeline, read_bundle
from ..pretrained import DEFAULT_MODEL, ModelNotFound, resolve_model
from ..readers import count_records, count_text_records, iter_records, iter_text_records
from ..runtime import DEFAULT_BATCH_SIZE, Runtime, write_predictions
from ..runtime.backends import BACKENDS, INT8_WEIGHTS
from ..runtime.reader import item_of
from ..runtime.runtime import apply_settings
from ..runtime.writer import FORMATS, complete_lines, plural
from .common import (
    CONTEXT,
    INTERRUPTED,
    Command,
    DeviceType,
    InputType,
    ModelDirType,
    SettingType,
    check_output,
    clean_errors,
    runtime_settings,
)


class Progress:
    """A bar that moves per batch (not per chunk), knows its total when the input is a file, counts good
    and failed documents, and shows the average rate (so instant error lines cannot inflate it) and an ETA."""

    def __init__(self, total: int | None, name: str, enabled: bool, per_write: bool = False):
        self.per_write = per_write  # no batch callbacks (another engine): count documents as they are written
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
        """Every written record: failed ones are counted here, and with `per_write` the good ones too."""
        with self._lock:
            if prediction.error is None:
                if self.per_write:
                    self.ok += 1
                    self.bar.update(1)
            else:
                self.failed += 1
                if prediction.document is not None and not self.per_write:
                    self.ok -= 1  # the model failed on it: its batch had counted it as done
                else:
                    self.bar.update(1)  # failed before any model call: no batch counted it
            self.bar.set_postfix(ok=self.ok, failed=self.failed, refresh=False)

    def note(self, message: str) -> None:
        self.bar.write(f"warning: {message}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=InputType(folders=True))
@click.option("--model", "model_dir", default=None, type=ModelDirType(pipeline=True),
              help="A docunet-train checkpoint, a docunet-export directory, a pipeline bundle (docunet-export --ner) or the "
                   f"name of a shipped model. Default: the shipped {DEFAULT_MODEL} pipeline (text -> entities -> relations).")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="Output file (default: stdout).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--backend", type=click.Choice(("auto",) + BACKENDS), default="auto")
@click.option("--device", type=DeviceType(), default="cpu", help="cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default=None,
              help="torch backend autocast; auto: bf16 on CPUs with AMX, fp32 elsewhere. Default: auto with "
                   "--backend auto, fp32 with --backend torch.")
@click.option("--int8-weights", type=click.Choice(INT8_WEIGHTS), default="auto",
              help="int8 exports: auto serves 8-bit weights requantized to 7 bits on CPUs without VNNI (where 8-bit ones "
                   "saturate), as-exported the export's own weights, w7 7-bit weights on any CPU.")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE, help="Documents per model call.")
@click.option("--threads", type=click.IntRange(0), default=0, help="CPU threads per model call (0: library defaults; with --workers, "
              "cores // workers; with --engine ray, each actor's CPUs). Outputs are byte-identical across engines at equal threads.")
@click.option("--workers", default=1, type=click.IntRange(1), help="Local engine: batches in flight at once in this process (threads); "
              "on CPUs, --workers 2 (one thread per call) gives more docs/s than one call on 2 threads, 1 the lowest latency. "
              "--engine ray: Ray actors, each a process with its own model.")
@click.option("--threshold", type=float, default=None, help="Override the model's decision threshold on the margin (see the README: output fields).")
@click.option("--top-k", type=click.IntRange(0), default=None, help="Override the model's top-k (0: no limit).")
@click.option("--grid-fit", type=click.IntRange(1), default=None,
              help="Pad each document's entity grid to the smallest multiple of K holding its entities instead of the "
                   "trained grid (42): faster, approximate (see the README's benchmark for the F1 change).")
@click.option("--setting", "settings", type=SettingType(), multiple=True,
              help="KEY=VALUE, repeatable: a serve-time model setting, e.g. prune_ratio=0.3 (entity models: candidate "
                   "pruning), ner.prune_ratio=0.3 for a pipeline bundle's entity model or coref.cross_type=none for its "
                   "coreference rules (docunet.coref.CorefRules).")
@click.option("--text", "plain_text", is_flag=True,
              help="INPUT is plain text: one document per line of a file (or stdin), or one per .txt/.md file of a folder.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl",
              help="jsonl: one line per input line; docred: a DocRED submission list; docred-docs: one DocRED document "
                   "(title, sents, vertexSet, labels) per input line, to correct and train on; text: readable entities "
                   "and relations, for people.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              help="local: this process (--workers batches in flight on threads); ray: Ray Data actors, each one Runtime "
                   "(needs the [ray] extra; the model directory must be readable at the same path on every node).")
@click.option("--address", default=None, help="With --engine ray: join the Ray cluster at this address (default: start a local Ray).")
@click.option("--cpus-per-worker", type=click.FloatRange(0, min_open=True), default=None,
              help="With --engine ray: CPUs per actor (default: the cluster's CPUs shared out between --workers).")
@click.option("--gpus-per-worker", type=click.FloatRange(0), default=0.0, help="With --engine ray: GPUs per actor.")
@click.option("--skip-errors", is_flag=True, help="Exit 0 even when some lines failed.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same --out file.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr (the summary line is still printed).")
@clean_errors
def main(input_path, model_dir, out_path, overwrite, backend, device, precision, int8_weights, batch_size, threads, workers, threshold,
         top_k, grid_fit, settings, plain_text, fmt, engine, address, cpus_per_worker, gpus_per_worker, skip_errors, resume, no_progress):
    """Extract entities or relations from INPUT: JSONL lines, each a DocRED document (title, sents, vertexSet),
    {"text": ..., "title" or "id"}, pre-tokenized {"sents": [[words]]} or a JSON string; a JSON list; a CDR/GDA
    .data file; FILE[start:stop] for a slice of its documents; - for stdin; or plain text with --text."""
    if Path(input_path).is_dir() and not plain_text:
        raise click.BadParameter(f"{input_path}: is a folder; pass --text to read its .txt files as documents", param_hint="INPUT")
    if resume and (out_path is None or fmt in ("docred", "text")):
        raise click.UsageError("--resume needs --out FILE and a line format (--format jsonl or docred-docs)")
    check_output(out_path, overwrite=overwrite, append=resume)
    try:
        model_dir = resolve_model(model_dir)
    except ModelNotFound as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from exc
    if engine == "local" and (address or cpus_per_worker or gpus_per_worker):
        raise click.UsageError("--address, --cpus-per-worker and --gpus-per-worker go with --engine ray")
    skip = complete_lines(out_path) if resume else 0
    total = count_text_records(input_path) if plain_text else count_records(input_path)
    records = iter_text_records(input_path) if plain_text else iter_records(input_path)
    if engine == "ray":
        predictions, name, names, notes = _ray_predictions(records, model_dir, skip, backend, device, precision, int8_weights,
                                                           batch_size, threads, workers, threshold, top_k, grid_fit, address,
                                                           cpus_per_worker, gpus_per_worker, runtime_settings(settings))
        progress = Progress(None if total is None else max(0, total - skip), name, enabled=not no_progress, per_write=True)
    else:
        rt = Runtime.load(model_dir, backend=backend, device=device, precision=precision, threads=threads or None,
                          grid_fit=grid_fit, workers=workers, int8_weights=int8_weights, **runtime_settings(settings))
        progress = Progress(None if total is None else max(0, total - skip), rt.name, enabled=not no_progress)
        rt.on_note = progress.note
        items = (item_of(r) for r in itertools.islice(records, skip, None))
        predictions = rt.predict(items, batch_size=batch_size, threshold=threshold, top_k=top_k, on_batch=progress.batch_done)
        names, notes = getattr(rt.config, "relation_names", {}), (lambda: rt.notes)
    try:
        summary = write_predictions(predictions, out_path, fmt, names, skip=skip, flush_every=batch_size, on_each=progress.written)
    except KeyboardInterrupt:
        progress.close()
        done = (complete_lines(out_path) - skip) if out_path is not None and fmt not in ("docred", "text") else None
        where = f"after {plural(done, 'document')}; continue with the same command and --resume" if done is not None else ""
        click.echo(f"docunet-run: interrupted {where}".rstrip(), err=True)
        sys.exit(INTERRUPTED)
    finally:
        progress.close()
    click.echo(summary.line(), err=True)
    for message, count in notes().items():
        click.echo(f"  note: {message} ({plural(count, 'mention')})", err=True)
    if summary.failed_lines and not skip_errors:
        sys.exit(1)


def _config_of(model_dir: Path):
    """The config of a checkpoint or export directory."""
    return load_config(model_dir / (json.loads((model_dir / MANIFEST_FILE).read_text())["config_file"]
                                    if is_export(model_dir) else CONFIG_FILE))


def _ray_predictions(records, model_dir, skip, backend, device, precision, int8_weights, batch_size, threads, workers, threshold,
                     top_k, grid_fit, address, cpus_per_worker, gpus_per_worker, load_settings):
    """(predictions, engine name, relation names, notes) of the Ray engine; nothing of Ray is imported before."""
    try:
        from ..scale.ray_engine import RayOptions, predict_on_ray
    except ImportError as exc:
        raise click.UsageError(f"--engine ray needs Ray Data: pip install 'docunet[ray]' ({exc})") from exc
    bundle = read_bundle(model_dir) if is_pipeline(model_dir) else None
    config = _config_of(bundle.relations if bundle else Path(model_dir))
    try:  # a bad --setting is one error line here, not a failure inside every actor
        apply_settings(config, load_settings.get("settings", {}), config.model_type)
        if load_settings.get("ner_settings"):
            if bundle is None:
                raise ValueError("ner.* settings apply to a pipeline bundle's entity model; this is a single model: drop the ner. prefix")
            ner = _config_of(bundle.ner)
            apply_settings(ner, load_settings["ner_settings"], ner.model_type)
        if load_settings.get("coref_settings"):
            if bundle is None or bundle.coref is None:
                raise ValueError("coref.* settings apply to a pipeline bundle's coreference step; this model has none")
            with_rule_settings(bundle.coref, load_settings["coref_settings"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--setting") from exc
    options = RayOptions(address=address, workers=workers, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                         threads=threads or None, batch_size=batch_size, backend=backend, device=device, precision=precision,
                         int8_weights=int8_weights, grid_fit=grid_fit, load_settings=load_settings)
    records = itertools.islice(records, skip, None)
    predictions = predict_on_ray(str(Path(model_dir).resolve()), records, options, threshold, top_k)  # the writer adds skip
    return predictions, f"ray x{workers}", getattr(config, "relation_names", {}), dict


if __name__ == "__main__":
    main()
