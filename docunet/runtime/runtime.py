"""Runtime: a lazy, generator-style predictor over any backend.

    rt = Runtime.load()                             # the shipped default model (text -> entities -> relations)
    rt = Runtime.load("model_dir")                  # a checkpoint, a docunet-export directory or a bundle
    for result in rt.predict(documents, batch_size=8):
        print(result.title, result.relations)

Documents may be `Document`s, DocRED-style dicts or `BadInput` placeholders; one result per input
comes back in input order. A document that cannot be used gets a result with `error` set; it never
fails the other documents of its batch. `predict_batch(items)` is the pure one-batch step (check,
featurize, collate, run, decode); `predict` schedules the same two halves over a lazy input: inside
a chunk of inputs, documents are sorted by length into batches (less padding), the next chunk is
featurized on a worker thread while the current one runs (the tokenizers release the GIL), and
with `workers=k`, k batches run at once.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import os
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch

from ..documents import (
    DataError,
    Document,
    PredictedRelation,
    PredictedSpan,
    data_error,
    json_kind,
)
from ..inference import DEFAULT_BATCH_SIZE, batch_indices, run_batch
from ..text.inputs import document_from_input
from ..timing import NULL_TIMER
from ..pipeline.bundle import is_pipeline
from ..pretrained import resolve_model
from .backends import Backend, load_backend
from .pipeline import Pipeline
from .prediction import BadInput, Prediction


class Runtime:
    CHUNK_BATCHES = 16  # a chunk of input is this many batches: read, featurized and sorted by length together
    def __init__(self, backend: Backend, chunk_batches: int = CHUNK_BATCHES, prefetch: bool = True, grid_fit: int | None = None,
                 workers: int = 1, settings: dict[str, Any] | None = None):
        """`grid_fit=k` pads each document to the smallest multiple of k holding its entities instead of
        the trained grid (faster U-Net, approximate: see DocuNetConfig.grid_fit); None keeps the model's.
        `workers=k` runs k batches at once (threads; the libraries release the GIL): on CPUs, k
        single-threaded model calls keep the cores busier than one call spread over k threads.
        `settings`: serve-time values of the model's config (its `serving_settings`, e.g. {"prune_ratio": 0.3}
        for an entity model)."""
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.backend = backend
        self.family = backend.family
        self.config = backend.config
        if grid_fit is not None:
            if not hasattr(self.config, "grid_fit"):
                raise ValueError(f"grid_fit does not apply to {self.family.model_type} models")
            self.config = dataclasses.replace(self.config, grid_fit=int(grid_fit))
        if settings:
            self.config = apply_settings(self.config, settings, self.family.model_type)
        # a setting may change what the featurizer reads (an entity model's one_case_shapes): its own featurizer then
        self.featurizer = (backend.featurizer if self.config is backend.config
                           else self.family.make_featurizer(backend.featurizer.tokenizer, self.config))
        self._noted: set[str] = set()
        self.on_note: Callable[[str], None] = lambda message: warnings.warn(message, InputWarning, stacklevel=2)
        self.chunk_batches = chunk_batches
        self.prefetch = prefetch
        self.workers = workers

    @classmethod
    def load(cls, model_dir: str | Path | None = None, backend: str = "auto", device: str = "cpu", precision: str | None = None,
             threads: int | None = None, attention: str = "sdpa", workers: int = 1, int8_weights: str = "auto",
             **kwargs: Any) -> "Runtime":
        """Open a checkpoint or export directory, or a pipeline bundle (entity model + coreference + relation
        model: a `runtime.pipeline.Pipeline` with the same interface) (`load_backend`: what "auto" picks, `precision`, and
        `int8_weights`, which int8 weights to serve). With `workers=k > 1` and no `threads`, each model
        call gets cores // k threads (ONNX Runtime intra-op threads and torch's thread count). `model_dir` may
        also name a model shipped with docunet; None loads the default one (`docunet.pretrained`)."""
        model_dir = resolve_model(model_dir)
        if is_pipeline(model_dir):  # a bundle: entity model + coreference + relation model
            return Pipeline.load(model_dir, cls, backend=backend, device=device, precision=precision, threads=threads,
                                 attention=attention, workers=workers, int8_weights=int8_weights, **kwargs)
        if kwargs.get("ner_settings"):
            raise ValueError("ner.* settings apply to a pipeline bundle's entity model; this is a single model: drop the ner. prefix")
        if kwargs.get("coref_settings"):
            raise ValueError("coref.* settings apply to a pipeline bundle's coreference step; this is a single model")
        kwargs.pop("ner_settings", None)
        kwargs.pop("coref_settings", None)
        if workers > 1 and not threads:
            threads = max(1, (os.cpu_count() or 1) // workers)
        return cls(load_backend(Path(model_dir), backend, device, precision, threads, attention, int8_weights), workers=workers, **kwargs)

    @property
    def name(self) -> str:
        return self.backend.name

    # -- input checking and featurization (runs on the prefetch thread) -------------------------
    def _document(self, index: int, item: Any) -> Document | Prediction:
        if isinstance(item, BadInput):
            return Prediction(index, None, error=f"{item.source}: {item.error}")
        try:
            if isinstance(item, Document):
                if item.num_entities < self.family.min_entities:
                    raise data_error(item.source or f"item {index + 1}", f"has {item.num_entities} entities, at least "
                                     f"{self.family.min_entities} are needed for a relation", "vertexSet", item.title)
                return self._check_size(item)
            if isinstance(item, (dict, str)):
                source = item.get("_source") if isinstance(item, dict) else None
                doc = document_from_input(item, source if isinstance(source, str) else f"item {index + 1}", self.family.min_entities)
                return self._check_size(doc)
            raise data_error(f"item {index + 1}", f"expected text, a Document or a DocRED-style dict, got {json_kind(item)}")
        except DataError as exc:
            title = item.get("title") if isinstance(item, dict) and isinstance(item.get("title"), str) else None
            return Prediction(index, title, error=str(exc))

    def _check_size(self, doc: Document) -> Document:
        problem = self.family.size_problem(doc)
        if problem:
            raise data_error(doc.source or doc.title, problem, "vertexSet", doc.title)
        return doc

    def _prepare(self, chunk: list[tuple[int, Any]]) -> tuple[list[Prediction | None], list[Document | None], list[Any]]:
        done: list[Prediction | None] = []
        docs: list[Document | None] = []
        for index, item in chunk:
            doc = self._document(index, item)
            done.append(doc if isinstance(doc, Prediction) else None)
            docs.append(doc if isinstance(doc, Document) else None)
        good = [i for i, d in enumerate(docs) if d is not None]
        features: list[Any] = [None] * len(docs)
        try:
            for i, f in zip(good, self.family.featurize(self.featurizer, [docs[i] for i in good])):
                features[i] = f
        except Exception:  # noqa: BLE001 - find the document that breaks the batched call
            for i in good:
                try:
                    features[i] = self.family.featurize(self.featurizer, [docs[i]])[0]
                except Exception as exc:  # noqa: BLE001
                    done[i] = Prediction(chunk[i][0], docs[i].title, error=f"{docs[i].source}: cannot featurize: {exc}")
                    docs[i] = None
        self._report_notes()
        return done, docs, features

    def _report_notes(self) -> None:
        """Say once per kind what the input does that the model was not trained for (unknown entity types...)."""
        notes = getattr(self.featurizer, "notes", None)
        if not notes:
            return
        for message in list(notes):
            if message not in self._noted:
                self._noted.add(message)
                self.on_note(message)

    @property
    def notes(self) -> dict[str, int]:
        """Input the model was not trained for, seen so far: message -> how many mentions (or items)."""
        return dict(getattr(self.featurizer, "notes", None) or {})

    # -- model calls ---------------------------------------------------------------------------
    def _run_batch(self, feats: list[Any], threshold: float | None, top_k: int | None, timer) -> list[list[PredictedRelation]]:
        b = self.backend
        with torch.inference_mode():
            batch, raw = run_batch(self.family, self.featurizer, self.config, b.graphs, feats, b.device, timer)
            with timer("decode"):
                return self.family.decode(batch, raw, self.config, threshold, top_k)

    def _run_group(self, chunk, docs, features, idx: list[int], threshold, top_k, timer, on_batch=None) -> list[Prediction]:
        """One batch; if it fails, its documents one by one, so one document cannot fail the batch."""
        try:
            rels = self._run_batch([features[i] for i in idx], threshold, top_k, timer)
        except Exception:  # noqa: BLE001
            rels = []
            for i in idx:
                try:
                    rels.append(self._run_batch([features[i]], threshold, top_k, timer)[0])
                except Exception as exc:  # noqa: BLE001
                    rels.append(exc)
        field_name = self.family.output
        family, config = self.family, self.config
        out = [Prediction(chunk[i][0], docs[i].title, error=f"{docs[i].source}: model failed: {r}", document=docs[i])
               if isinstance(r, Exception) else Prediction(chunk[i][0], docs[i].title, document=docs[i],
                                                           warning=family.input_warning(config, docs[i]),
                                                           **{field_name: _named(r, docs[i])})
               for i, r in zip(idx, rels)]
        if on_batch is not None:
            on_batch(len(idx))
        return out

    def _start_chunk(self, chunk, prepared, batch_size, threshold, top_k, timer, pool, on_batch=None) -> Callable[[], list[Prediction]]:
        """Run a chunk's batches (queued on `pool` when there is one); the returned function waits for
        them and gives the chunk's predictions in input order."""
        done, docs, features = prepared
        good = [i for i, f in enumerate(features) if f is not None and docs[i] is not None]
        # sorted by length only, also with grid_fit: sorting by grid first saves head calls but pads the
        # encoder more, which measured slower (10.4 vs 9.6 docs/s, int8, grid_fit 14)
        groups = [[good[g] for g in group] for group in batch_indices([features[i].length for i in good], batch_size)]
        run = functools.partial(self._run_group, chunk, docs, features, threshold=threshold, top_k=top_k, timer=timer,
                                on_batch=on_batch)
        outs = [(pool.submit if pool is not None else _run_now)(run, g) for g in groups]

        def finish() -> list[Prediction]:
            results = list(done)
            for idx, out in zip(groups, outs):
                for i, p in zip(idx, out.result()):
                    results[i] = p
            return results  # type: ignore[return-value]
        return finish

    def _prepared_chunks(self, chunks: Iterator[list], timer, stack: contextlib.ExitStack) -> Iterator[tuple[list, tuple]]:
        """(chunk, featurized chunk) pairs; with `prefetch`, the next chunk is featurized meanwhile."""
        if not self.prefetch:
            for chunk in chunks:
                with timer("featurize"):
                    prepared = self._prepare(chunk)
                yield chunk, prepared
            return
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="docunet-featurize"))
        chunk = next(chunks, None)
        future = pool.submit(self._prepare, chunk) if chunk else None
        while chunk:
            with timer("featurize_wait"):
                prepared = future.result()
            nxt = next(chunks, None)
            future = pool.submit(self._prepare, nxt) if nxt else None
            yield chunk, prepared
            chunk = nxt

    def predict_batch(self, items: list[Any], threshold: float | None = None, top_k: int | None = None,
                      timer=NULL_TIMER, start: int = 0) -> list[Prediction]:
        """The pure one-batch step: one Prediction per item, in order (indices from `start`), errors as
        results; the items' documents run as one model call (one by one if that call fails)."""
        _check_decoding(1, top_k)
        chunk = list(enumerate(items, start))
        with timer("featurize"):
            prepared = self._prepare(chunk)
        done, docs, features = prepared
        good = [i for i, f in enumerate(features) if f is not None and docs[i] is not None]
        results = list(done)
        if good:
            for i, p in zip(good, self._run_group(chunk, docs, features, good, threshold, top_k, timer)):
                results[i] = p
        return results  # type: ignore[return-value]

    def predict(self, documents: Iterable[Any], batch_size: int = DEFAULT_BATCH_SIZE, threshold: float | None = None,
                top_k: int | None = None, timer=NULL_TIMER, on_batch: Callable[[int], None] | None = None) -> Iterator[Prediction]:
        """Yield one Prediction per input, in input order, reading the input lazily. `on_batch(n)` is called
        (from any worker thread) each time a batch of n documents has run: progress between results."""
        _check_decoding(batch_size, top_k)
        chunk_size = max(1, batch_size * self.chunk_batches)
        numbered = enumerate(documents)
        chunks = iter(lambda: list(itertools.islice(numbered, chunk_size)), [])
        with contextlib.ExitStack() as stack:
            models = None
            if self.workers > 1:
                models = ThreadPoolExecutor(self.workers, thread_name_prefix="docunet-model")
                stack.callback(models.shutdown, wait=True, cancel_futures=True)
            started: collections.deque[Callable[[], list[Prediction]]] = collections.deque()
            for chunk, prepared in self._prepared_chunks(chunks, timer, stack):
                started.append(self._start_chunk(chunk, prepared, batch_size, threshold, top_k, timer, models, on_batch))
                # with workers, the next chunk's batches are queued before this chunk's are collected, so no
                # worker waits at the end of a chunk
                while len(started) > (1 if models is not None else 0):
                    yield from started.popleft()()
            while started:
                yield from started.popleft()()


def apply_settings(config: Any, settings: dict[str, Any], model_type: str) -> Any:
    """`config` with serve-time `settings` (the config's `serving_settings` only, each of its field's kind), or a
    ValueError naming the setting: checked where a model is loaded and, for remote workers, before they start."""
    allowed = getattr(config, "serving_settings", ())
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a serving setting of {model_type} models "
                         f"(those are: {', '.join(allowed) or 'none'})")
    for key, value in settings.items():
        current = getattr(config, key)
        kind = bool if isinstance(current, bool) else (int, float) if isinstance(current, (int, float)) else type(current)
        if not isinstance(value, kind) or (kind != bool and isinstance(value, bool)):
            raise ValueError(f"setting {key}: expected {'true or false' if kind is bool else 'a number'}, got {value!r}")
    try:
        return dataclasses.replace(config, **settings)
    except ValueError as exc:
        raise ValueError(f"settings {settings}: {exc}") from exc


class InputWarning(UserWarning):
    """Input the model was not trained for (an unknown entity type...): it runs, but say so."""


def _check_decoding(batch_size: int, top_k: int | None) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"top_k must be >= 0 (0: no limit), got {top_k!r}")


def _named(outputs: list, doc: Document) -> list:
    """Relations with their entities' names (the first mention of each), mentions with their text and character
    offsets (into the input text, or into the words joined by single spaces), as the CLI writes them."""
    out = []
    offsets, surface = None, ""
    for r in outputs:
        if isinstance(r, PredictedRelation):
            r = dataclasses.replace(r, head_name=doc.entities[r.head][0].name, tail_name=doc.entities[r.tail][0].name)
        elif isinstance(r, PredictedSpan):
            if offsets is None:
                offsets, surface = doc.char_offsets(), doc.surface()
            a, b = doc.char_span(r.sent_id, r.start, r.end, offsets)
            r = dataclasses.replace(r, text=surface[a:b], start_char=a, end_char=b)
        out.append(r)
    return out


def _run_now(fn: Callable, *args: Any) -> Future:
    """`fn(*args)` run here, as a finished Future (the same interface as a pool's submit)."""
    future: Future = Future()
    future.set_result(fn(*args))
    return future
