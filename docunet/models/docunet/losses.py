"""Losses over pair logits and the decoding rule, shared by training, evaluation and the runtime.

`balanced`: the paper's balanced softmax (multi-label categorical cross-entropy with an implicit
threshold logit 0); class 0 (no relation) is an ordinary class. `adaptive`: ATLOP's adaptive
threshold loss, class 0 is the learned threshold. Logits are [P, R], labels [P, R] multi-hot with
column 0 set for pairs without a relation.
"""
from __future__ import annotations

import math

import torch

from ...documents import PredictedRelation

_BIG = 1e30


def balanced_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mean over pairs of log(1 + sum_neg e^{s}) + log(1 + sum_pos e^{-s})."""
    logits, labels = logits.float(), labels.bool()
    zero = logits.new_zeros(logits.shape[0], 1)
    neg = torch.cat([zero, logits.masked_fill(labels, -_BIG)], dim=-1)
    pos = torch.cat([zero, (-logits).masked_fill(~labels, -_BIG)], dim=-1)
    return (torch.logsumexp(neg, -1) + torch.logsumexp(pos, -1)).mean()


def adaptive_threshold_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Positives must beat the threshold class 0; the threshold must beat every negative."""
    logits, labels = logits.float(), labels.float().clone()
    labels[:, 0] = 0.0
    th = torch.zeros_like(labels)
    th[:, 0] = 1.0
    pos_side = logits - (1.0 - (labels + th)) * _BIG
    loss_pos = -(torch.log_softmax(pos_side, -1) * labels).sum(-1)
    neg_side = logits - labels * _BIG
    loss_neg = -(torch.log_softmax(neg_side, -1) * th).sum(-1)
    return (loss_pos + loss_neg).mean()


LOSSES = {"balanced": balanced_loss, "adaptive": adaptive_threshold_loss}


def decode(logits: torch.Tensor, loss: str = "balanced", threshold: float = 0.0, top_k: int = 0) -> torch.Tensor:
    """Logits [..., R] -> bool [..., R]; column 0 is True where no relation was predicted.

    A label is predicted when its logit exceeds the threshold (0 for the balanced loss, the
    threshold class's logit for the adaptive loss, plus `threshold`) and, with top_k > 0, is among
    the k largest logits of the pair (class 0 competes for a slot, as in the original).
    """
    logits = logits.float()
    bar = logits[..., :1] + threshold if loss == "adaptive" else torch.full_like(logits[..., :1], threshold)
    keep = logits > bar
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        keep &= logits >= kth
    keep[..., 0] = False
    keep[..., 0] = ~keep[..., 1:].any(-1)
    return keep


def decision_margin(logits: torch.Tensor, loss: str) -> torch.Tensor:
    """Logits [..., R] -> how far each label is over the model's decision bar (0 for the balanced loss,
    the no-relation logit for the adaptive loss); `decode` keeps a label when this exceeds the threshold."""
    logits = logits.float()
    return logits - logits[..., :1] if loss == "adaptive" else logits


def probability(margin: float, calibration: list[float] | None) -> float:
    """The probability-like score of a margin: sigmoid(a * margin + b) with the model's calibration
    (a, b), or sigmoid(margin) when it has none."""
    a, b = calibration if calibration else (1.0, 0.0)
    z = a * margin + b
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def relations_from_logits(logits: torch.Tensor, pair_mask: torch.Tensor, relations: list[str], loss: str,
                          threshold: float, top_k: int, names: dict[str, str] | None = None,
                          calibration: list[float] | None = None) -> list[list[PredictedRelation]]:
    """Logits [b, N, N, R] + scored pairs [b, E, E] -> predicted relations per document."""
    n = min(logits.shape[1], pair_mask.shape[1])
    logits = logits[:, :n, :n]
    keep = decode(logits, loss, threshold, top_k) & pair_mask[:, :n, :n, None].to(logits.device)
    keep[..., 0] = False
    hits = keep.nonzero().tolist()
    margins = decision_margin(logits, loss)[keep].tolist()
    names = names or {}
    out: list[list[PredictedRelation]] = [[] for _ in range(logits.shape[0])]
    for (b, h, t, r), m in zip(hits, margins):
        label = relations[r]
        out[b].append(PredictedRelation(h, t, label, probability(m, calibration), m, names.get(label, label)))
    return out
