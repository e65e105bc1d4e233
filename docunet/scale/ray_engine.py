"""Batch inference on Ray Data, with exactly the local engine's output (the only module that imports `ray`).

The driver reads the input with the one reader of every command (`readers.iter_records`: each line's
source, parsed value or error), so one output per input line and the error records are the local
engine's; Ray's own readers would fail a whole read on one bad line and split on Unicode line
separators. The records go to Ray Data (`from_items`) as chunks of the local engine's size (batch size
x chunk batches, from the same first line), one row per chunk, so every batch has the very documents
it has locally (int8 results depend a little on batch-mates). `map_batches` runs a callable class
whose constructor loads one `Runtime` per actor and whose call predicts a chunk, with an
`ActorPoolStrategy` and `preserve_order`, and the predictions stream back to the driver, which writes
the one ordered file through the same writer as the local engine (`runtime.writer`).

The model directory must be readable at the same path on every node (a shared filesystem); it is not
shipped. Faults: Ray restarts an actor that dies and retries its batch (unlimited by default for
actor pools), so the output stays complete; a batch that raises becomes error records for its lines.
"""
from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import ray
import ray.data

from ..readers import Record
from ..runtime import Prediction, Runtime
from ..runtime.reader import item_of

WINDOW = 20_000  # records per Ray Dataset: bounds the driver's memory on long inputs


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local Ray in this process; else join that cluster
    workers: int = 1  # Ray actors, each one Runtime
    cpus_per_worker: float | None = None  # None: the local CPUs shared out between the workers
    gpus_per_worker: float = 0.0
    threads: int | None = None  # per model call; None: the actor's CPUs (byte-identical output needs the local run's count)
    batch_size: int = 8
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = None  # None: auto under the auto backend, fp32 for the torch backend (load_backend)
    int8_weights: str = "auto"  # which int8 weights an onnxruntime backend serves (served_int8_bits)
    grid_fit: int | None = None
    # serve-time model settings, as Runtime.load takes them: {"settings": {...}, "ner_settings": {...}} (--setting)
    load_settings: dict = field(default_factory=dict)
    # fault-tolerance tests: a flag-file path; the first actor call that creates it kills its own process
    die_once: str | None = None


class _Predictor:
    """One Ray actor: one Runtime; each call predicts whole chunks of records, as the local engine does."""

    def __init__(self, model_dir: str, options: RayOptions, threads: int, threshold, top_k):
        self.rt = Runtime.load(model_dir, backend=options.backend, device=options.device, precision=options.precision,
                               threads=threads, grid_fit=options.grid_fit, int8_weights=options.int8_weights,
                               **options.load_settings)
        self.rt.prefetch = False  # one chunk per call: nothing to read ahead
        self.batch_size, self.threshold, self.top_k = options.batch_size, threshold, top_k
        self.die_once = options.die_once

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        if self.die_once and not os.path.exists(self.die_once):
            open(self.die_once, "w").close()
            os._exit(1)  # the actor's process dies mid-run, as a crashed or preempted worker would
        return {"chunk": [pickle.dumps(self._predict(pickle.loads(chunk))) for chunk in batch["chunk"]]}

    def _predict(self, records: list[tuple[int, Record]]) -> list[Prediction]:
        items = [item_of(r) for _, r in records]
        try:
            preds = list(self.rt.predict(items, batch_size=self.batch_size, threshold=self.threshold, top_k=self.top_k))
        except Exception as exc:  # noqa: BLE001 - a failing chunk becomes error records, never a failed job
            preds = [Prediction(0, None, error=f"{r.source}: batch failed: {exc}") for _, r in records]
        return [replace(p, index=i, document=None) for (i, _), p in zip(records, preds)]


def _chunks(records: Iterator[Record], start: int, size: int) -> Iterator[list[tuple[int, Record]]]:
    chunk: list[tuple[int, Record]] = []
    for i, r in enumerate(records, start):
        chunk.append((i, r))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def init_ray(options: RayOptions) -> float:
    """Join the cluster at `options.address`, or start a local Ray (no dashboard); returns the seconds it took.
    Ray Data's expected notices (execution plans, progress-bar hints) are kept off the terminal."""
    t0 = time.perf_counter()
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if not ray.is_initialized():
        kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        ray.init(address=options.address, **kwargs) if options.address else ray.init(**kwargs)
    return time.perf_counter() - t0


def predict_on_ray(model_dir: str, records: Iterator[Record], options: RayOptions, threshold: float | None = None,
                   top_k: int | None = None, start: int = 0) -> Iterator[Prediction]:
    """One Prediction per record, in input order (indices from `start`), computed by Ray actors."""
    init_ray(options)
    cpus = options.cpus_per_worker
    if cpus is None:
        cpus = max(0.5, float(ray.available_resources().get("CPU", 1)) / options.workers)
    threads = options.threads or max(1, int(cpus))
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    chunk_size = options.batch_size * Runtime.CHUNK_BATCHES
    window: list[dict] = []
    for chunk in _chunks(records, start, chunk_size):
        window.append({"chunk": pickle.dumps(chunk)})
        if len(window) * chunk_size >= WINDOW:
            yield from _run_window(window, model_dir, options, cpus, threads, threshold, top_k)
            window = []
    if window:
        yield from _run_window(window, model_dir, options, cpus, threads, threshold, top_k)


def _run_window(rows: list[dict], model_dir: str, options: RayOptions, cpus: float, threads: int, threshold, top_k) -> Iterator[Prediction]:
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(_Predictor, fn_constructor_args=(str(model_dir), options, threads, threshold, top_k),
                        batch_size=1, batch_format="numpy", num_cpus=cpus, num_gpus=options.gpus_per_worker or None,
                        compute=ray.data.ActorPoolStrategy(size=min(options.workers, len(rows))))
    expected = None
    for row in ds.iter_rows():  # chunks in input order (preserve_order)
        for p in pickle.loads(row["chunk"]):
            if expected is not None and p.index != expected:
                raise RuntimeError(f"Ray returned input {p.index + 1} where input {expected + 1} was due")
            expected = p.index + 1
            yield p
