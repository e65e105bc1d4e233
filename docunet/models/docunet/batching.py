"""DocFeatures -> padded tensors for one batch: encoder windows, merge maps, mentions, labels.

Documents longer than one window are cut into windows of at most `max_window` tokens that overlap
by at least `window_overlap` tokens and cover every token. Two windows are exactly the original
DocuNet/ATLOP layout ([0, W-1) + artificial end token, artificial start token + [L-W+1, L)); longer
documents get evenly spaced interior windows. A document that fits one window is one window.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .featurize import DocFeatures, Featurizer


@dataclass
class Window:
    doc: int
    start: int  # first document position in the window
    stop: int  # one past the last document position
    add_prefix: bool  # window starts with artificial special tokens
    add_suffix: bool


def plan_windows(length: int, max_window: int, overlap: int, n_prefix: int = 1, n_suffix: int = 1) -> list[tuple[int, int, bool, bool]]:
    """Spans (start, stop, add_prefix, add_suffix) covering [0, length) with windows of <= max_window tokens."""
    if length <= max_window:
        return [(0, length, False, False)]
    first, last, inner = max_window - n_suffix, max_window - n_prefix, max_window - n_prefix - n_suffix
    step = max(1, inner - overlap)
    n = max(2, 1 + -(-(length - last) // step))
    spans = [(0, first, False, True)]
    for k in range(1, n - 1):
        s = (k * (length - last)) // (n - 1)
        spans.append((s, s + inner, True, True))
    spans.append((length - last, length, True, False))
    return spans


@dataclass
class Batch:
    """Tensors for a batch of B documents split into W windows (T tokens each, padded)."""

    input_ids: torch.Tensor  # [W, T] int32
    attention_mask: torch.Tensor  # [W, T] int32
    query_pos: torch.Tensor  # [W, Q] int64: in-window positions whose last-layer attention rows are needed
    query_mention: torch.Tensor  # [W, Q] int64: flat mention index b * M + m of each query, -1 for padding
    window_doc: torch.Tensor  # [W] int64
    window_shift: torch.Tensor  # [W] int64: document position = in-window position + shift
    window_lo: torch.Tensor  # [W] int64: first in-window position that belongs to the document
    window_hi: torch.Tensor  # [W] int64: one past the last such position
    doc_len: torch.Tensor  # [B] int64
    doc_windows: torch.Tensor  # [B] int64
    mention_pos: torch.Tensor  # [B, M] int64 (0 for padding)
    mention_entity: torch.Tensor  # [B, M] int64 (-1 for padding)
    num_entities: torch.Tensor  # [B] int64
    pair_mask: torch.Tensor  # [B, E, E] bool: the pairs that are predicted / scored
    labels: torch.Tensor | None  # [B, E, E, R] bool, or None when unlabelled

    @property
    def batch_size(self) -> int:
        return int(self.doc_len.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return Batch(**{k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in moved.items()})


def collate(features: list[DocFeatures], max_window: int, overlap: int, pad_id: int, prefix: list[int],
            suffix: list[int]) -> Batch:
    """Build the padded tensors of one batch. `prefix`/`suffix` are the special-token ids windows get."""
    n_prefix, n_suffix = len(prefix), len(suffix)
    B = len(features)
    M = max(1, max(len(f.mention_pos) for f in features))
    E = max(1, max(f.num_entities for f in features))
    windows: list[Window] = []
    doc_windows = []
    for b, f in enumerate(features):
        spans = plan_windows(f.length, max_window, overlap, n_prefix, n_suffix)
        doc_windows.append(len(spans))
        windows += [Window(b, s, e, p, q) for s, e, p, q in spans]
    W = len(windows)
    T = max((w.stop - w.start) + n_prefix * w.add_prefix + n_suffix * w.add_suffix for w in windows)
    input_ids = np.full((W, T), pad_id, np.int32)
    attention_mask = np.zeros((W, T), np.int32)
    shift = np.zeros(W, np.int64)
    lo = np.zeros(W, np.int64)
    hi = np.zeros(W, np.int64)
    queries: list[tuple[np.ndarray, np.ndarray]] = []
    for i, w in enumerate(windows):
        f = features[w.doc]
        p = n_prefix if w.add_prefix else 0
        n = w.stop - w.start
        row = input_ids[i]
        row[:p] = prefix[:p]
        row[p : p + n] = f.input_ids[w.start : w.stop]
        if w.add_suffix:
            row[p + n : p + n + n_suffix] = suffix
        attention_mask[i, : p + n + (n_suffix if w.add_suffix else 0)] = 1
        shift[i], lo[i], hi[i] = w.start - p, p, p + n
        inside = np.nonzero((f.mention_pos >= w.start) & (f.mention_pos < w.stop))[0]
        queries.append((f.mention_pos[inside] - w.start + p, w.doc * M + inside))
    Q = max(1, max(len(q[0]) for q in queries))
    query_pos = np.zeros((W, Q), np.int64)
    query_mention = np.full((W, Q), -1, np.int64)
    for i, (pos, mention) in enumerate(queries):
        query_pos[i, : len(pos)] = pos
        query_mention[i, : len(pos)] = mention
    mention_pos = np.zeros((B, M), np.int64)
    mention_entity = np.full((B, M), -1, np.int64)
    pair_mask = np.zeros((B, E, E), bool)
    labelled = all(f.pair_labels is not None for f in features)
    R = features[0].pair_labels.shape[1] if labelled else 0
    labels = np.zeros((B, E, E, R), bool) if labelled else None
    for b, f in enumerate(features):
        mention_pos[b, : len(f.mention_pos)] = f.mention_pos
        mention_entity[b, : len(f.mention_entity)] = f.mention_entity
        if len(f.pairs):
            pair_mask[b, f.pairs[:, 0], f.pairs[:, 1]] = True
            if labels is not None:
                labels[b, f.pairs[:, 0], f.pairs[:, 1]] = f.pair_labels
    t = torch.from_numpy
    return Batch(
        input_ids=t(input_ids), attention_mask=t(attention_mask), query_pos=t(query_pos),
        query_mention=t(query_mention), window_doc=torch.tensor([w.doc for w in windows], dtype=torch.int64),
        window_shift=t(shift), window_lo=t(lo), window_hi=t(hi),
        doc_len=torch.tensor([f.length for f in features], dtype=torch.int64),
        doc_windows=torch.tensor(doc_windows, dtype=torch.int64), mention_pos=t(mention_pos),
        mention_entity=t(mention_entity), num_entities=torch.tensor([f.num_entities for f in features], dtype=torch.int64),
        pair_mask=t(pair_mask), labels=None if labels is None else t(labels),
    )


def collate_features(featurizer: Featurizer, features: list[DocFeatures]) -> Batch:
    """Pad a list of DocFeatures into a Batch with this featurizer's special tokens and window settings."""
    cfg = featurizer.config
    return collate(features, cfg.max_window, cfg.window_overlap, featurizer.pad_id, prefix=featurizer.prefix, suffix=featurizer.suffix)
