"""The one inference core: length-sorted batches -> collate -> run over the graphs -> decode.

Every caller that runs a model goes through here, whatever executes the graphs: prediction and
evaluation with the PyTorch model, export validation and int8 calibration, and the runtime's
one-batch step (`Runtime.predict_batch`). A family supplies collate/run/decode (models/base.py);
`graphs` maps graph names to callables (PyTorch modules, ONNX Runtime sessions, TensorRT engines).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from .models import family_of
from .models.base import Graphs, ModelFamily
from .timing import NULL_TIMER

DEFAULT_BATCH_SIZE = 8  # documents per batch when serving and evaluating


def batch_indices(lengths: Sequence[int], batch_size: int, sort: bool = True) -> list[list[int]]:
    """Indices grouped into batches; with `sort`, of similar length (less padding; callers restore input order)."""
    order = np.argsort(np.asarray(lengths), kind="stable") if sort else np.arange(len(lengths))
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def run_batch(family: ModelFamily, featurizer: Any, config: Any, graphs: Graphs, features: Sequence[Any],
              device: torch.device | str | None = None, timer=NULL_TIMER,
              autocast_dtype: torch.dtype | None = None) -> tuple[Any, Any]:
    """Collate `features` and run the graphs on them: (batch, raw outputs)."""
    with timer("collate"):
        batch = family.collate(featurizer, features)
        if device is not None:
            batch = batch.to(device)
    kind = torch.device(device).type if device is not None else "cpu"
    amp = torch.autocast(kind, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    with amp:
        raw = family.run(batch, graphs, config, timer)
    return batch, raw


def iter_batches(family: ModelFamily, featurizer: Any, config: Any, graphs: Graphs, features: Sequence[Any],
                 batch_size: int, device: torch.device | str | None = None, sort: bool = True, timer=NULL_TIMER,
                 autocast_dtype: torch.dtype | None = None) -> Iterator[tuple[list[int], Any, Any]]:
    """(indices into `features`, batch, raw outputs) for every batch, under `torch.inference_mode`."""
    for idx in batch_indices([f.length for f in features], batch_size, sort):
        with torch.inference_mode():
            batch, raw = run_batch(family, featurizer, config, graphs, [features[i] for i in idx], device, timer, autocast_dtype)
        yield idx, batch, raw


def predict_features(family: ModelFamily, featurizer: Any, config: Any, graphs: Graphs, features: Sequence[Any],
                     batch_size: int = DEFAULT_BATCH_SIZE, threshold: float | None = None, top_k: int | None = None,
                     device: torch.device | str | None = None, autocast_dtype: torch.dtype | None = None) -> list[list]:
    """Decoded predictions for every featurized document, in input order."""
    results: list[list] = [[] for _ in features]
    for idx, batch, raw in iter_batches(family, featurizer, config, graphs, features, batch_size, device,
                                        autocast_dtype=autocast_dtype):
        with torch.inference_mode():
            for i, preds in zip(idx, family.decode(batch, raw, config, threshold, top_k)):
                results[i] = preds
    return results


def predict_documents(model: torch.nn.Module, featurizer: Any, docs: Sequence[Any], batch_size: int = DEFAULT_BATCH_SIZE,
                      threshold: float | None = None, top_k: int | None = None,
                      autocast_dtype: torch.dtype | None = None) -> list[list]:
    """Predictions of a PyTorch model (the reference every engine matches) for documents, in input order."""
    family = family_of(model.config)
    model.eval()
    device = next(model.parameters()).device
    features = family.featurize(featurizer, docs)
    return predict_features(family, featurizer, model.config, family.graphs(model), features, batch_size, threshold, top_k,
                            device, autocast_dtype)


def capture_graph_inputs(family: ModelFamily, model: torch.nn.Module, featurizer: Any, docs: Sequence[Any], graph: str,
                         input_names: Sequence[str], batch_size: int = 4, limit: int = 64) -> list[dict[str, np.ndarray]]:
    """The inputs graph `graph` receives (as numpy, by input name) when the PyTorch model runs on up to
    `limit` documents in input order: calibration data for static int8 quantization."""
    captured: list[dict[str, np.ndarray]] = []
    graphs = dict(family.graphs(model))
    inner: Callable = graphs[graph]

    def capture(*tensors: torch.Tensor):
        captured.append({name: t.detach().cpu().numpy() for name, t in zip(input_names, tensors)})
        return inner(*tensors)

    graphs[graph] = capture
    features = family.featurize(featurizer, list(docs)[:limit])
    for _ in iter_batches(family, featurizer, model.config, graphs, features, batch_size, sort=False):
        pass
    return captured
