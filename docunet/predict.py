"""Predict relations for documents with the PyTorch model (the reference every backend matches)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .documents import Document
from .featurize import DocFeatures, Featurizer, collate_features
from .losses import decode
from .modeling import DocuNet


@dataclass(frozen=True)
class PredictedRelation:
    head: int
    tail: int
    label: str
    score: float


def length_sorted_batches(features: list[DocFeatures], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding); callers restore input order."""
    order = np.argsort([f.length for f in features], kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def relations_from_logits(logits: torch.Tensor, pair_mask: torch.Tensor, relations: list[str], loss: str,
                          threshold: float, top_k: int) -> list[list[PredictedRelation]]:
    """Logits [b, N, N, R] + scored pairs [b, E, E] -> predicted relations per document."""
    n = min(logits.shape[1], pair_mask.shape[1])
    logits = logits[:, :n, :n]
    keep = decode(logits, loss, threshold, top_k) & pair_mask[:, :n, :n, None].to(logits.device)
    keep[..., 0] = False
    hits = keep.nonzero().tolist()
    scores = logits[keep].float().tolist()
    out: list[list[PredictedRelation]] = [[] for _ in range(logits.shape[0])]
    for (b, h, t, r), s in zip(hits, scores):
        out[b].append(PredictedRelation(h, t, relations[r], s))
    return out


@torch.no_grad()
def predict_relations(model: DocuNet, featurizer: Featurizer, docs: list[Document], batch_size: int = 8,
                      threshold: float | None = None, top_k: int | None = None,
                      autocast_dtype: torch.dtype | None = None) -> list[list[PredictedRelation]]:
    """Relations for every document, in input order."""
    cfg = model.config
    threshold = cfg.threshold if threshold is None else threshold
    top_k = cfg.top_k if top_k is None else top_k
    model.eval()
    device = next(model.parameters()).device
    features = featurizer(docs)
    results: list[list[PredictedRelation]] = [[] for _ in docs]
    for idx in length_sorted_batches(features, batch_size):
        batch = collate_features(featurizer, [features[i] for i in idx]).to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            groups = model(batch)
        for docs_in_group, logits in groups:
            rels = relations_from_logits(logits, batch.pair_mask[docs_in_group], cfg.relations, cfg.loss, threshold, top_k)
            for local, rel in zip(docs_in_group.tolist(), rels):
                results[idx[local]] = rel
    return results


def iter_facts(docs: list[Document], predictions: list[list[PredictedRelation]]) -> Iterator[tuple[str, int, int, str]]:
    for d, rels in zip(docs, predictions):
        for r in rels:
            yield (d.title, r.head, r.tail, r.label)


def to_docred_submission(docs: list[Document], predictions: list[list[PredictedRelation]]) -> list[dict]:
    return [{"title": t, "h_idx": h, "t_idx": tt, "r": r} for t, h, tt, r in iter_facts(docs, predictions)]
