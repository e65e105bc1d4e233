"""Span features -> padded tensors, in the two layouts of the two passes.

`WindowBatch` (training and serving: the text-once pass): one row per text window with its text and all
its candidate spans; the markers are built inside the model (modeling.SpanGraph), each attending to the
window's text, itself and its partner.

`SpanBatch` (the dense packed pass, the original's layout; the reference the text-once pass is tested
against): one row per packed instance, T = Lmax + 2 Kmax tokens: the text (padded to Lmax), the K start
markers (padded to Kmax), then the K end markers. Position ids: the text counts 0..L-1; the start marker
of span j takes the position of the span's first word piece, its end marker that of the last one.
Attention: text attends to text only; a marker attends to the text, to itself and to its partner;
padding rows attend to the first token (any finite row). So the text's states never depend on markers.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .featurize import DocSpanFeatures, SpanFeaturizer, SpanInstance, SpanWindow


def _to(batch, device):
    moved = {f.name: getattr(batch, f.name) for f in fields(batch)}
    return type(batch)(**{k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in moved.items()})


@dataclass
class WindowBatch:
    input_ids: torch.Tensor  # [W, L] int32: each window's text, padded
    attention_mask: torch.Tensor  # [W, L] int32: 1 for real text
    span_first: torch.Tensor  # [W, C] int32: each candidate's first word piece (its start marker's position)
    span_last: torch.Tensor  # [W, C] int32: its last word piece
    span_shape: torch.Tensor  # [W, C, 4] int32: word shapes (featurize.word_shape)
    span_mask: torch.Tensor  # [W, C] bool
    span_word: torch.Tensor  # [W, C, 3] int64: sentence, first word, one past the last word
    labels: torch.Tensor | None  # [W, C] int64, -100 for padding; None when unlabelled
    boundary: torch.Tensor | None  # [W, L, 2] int64: gold span first / last pieces (1), others 0, -100 ignored
    window_words: torch.Tensor  # [W] int64: words of the window's sentences
    instance_doc: torch.Tensor  # [W] int64: the document (in the batch) each window belongs to
    num_docs: int

    @property
    def batch_size(self) -> int:
        return self.num_docs

    def to(self, device) -> "WindowBatch":
        return _to(self, device)

    def rows(self, start: int, stop: int) -> "WindowBatch":
        """Windows [start, stop) (same padding, same documents)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return WindowBatch(**{k: v[start:stop] if isinstance(v, torch.Tensor) else v for k, v in moved.items()})


@dataclass
class SpanBatch:
    input_ids: torch.Tensor  # [N, T] int32
    position_ids: torch.Tensor  # [N, T] int32
    attention_mask: torch.Tensor  # [N, T, T] int32 (1: may attend)
    start_index: torch.Tensor  # [N, K] int32: where each span's start marker sits
    end_index: torch.Tensor  # [N, K] int32
    text_start: torch.Tensor  # [N, K] int32: the span's first word piece
    text_end: torch.Tensor  # [N, K] int32: its last word piece
    span_shape: torch.Tensor  # [N, K, 4] int32
    span_mask: torch.Tensor  # [N, K] bool
    span_word: torch.Tensor  # [N, K, 3] int64: sentence, first word, one past the last word
    labels: torch.Tensor | None  # [N, K] int64, -100 for padding; None when unlabelled
    instance_doc: torch.Tensor  # [N] int64: the document (in the batch) each instance belongs to
    num_docs: int

    @property
    def batch_size(self) -> int:
        return self.num_docs

    def to(self, device) -> "SpanBatch":
        return _to(self, device)


def collate_windows(featurizer: SpanFeaturizer, features: list[DocSpanFeatures]) -> WindowBatch:
    wins: list[tuple[int, SpanWindow]] = [(d, w) for d, f in enumerate(features) for w in f.windows]
    W = max(1, len(wins))
    L = max((len(w.input_ids) for _, w in wins), default=2)
    C = max((len(w.span_pos) for _, w in wins), default=1) or 1
    ids = np.full((W, L), featurizer.pad_id, np.int32)
    mask = np.zeros((W, L), np.int32)
    mask[:, 0] = 1  # an empty padding row still attends somewhere
    first = np.zeros((W, C), np.int32)
    last = np.zeros((W, C), np.int32)
    shape = np.zeros((W, C, 4), np.int32)
    span_mask = np.zeros((W, C), bool)
    span_word = np.zeros((W, C, 3), np.int64)
    labelled = bool(wins) and all(w.labels is not None for _, w in wins)
    labels = np.full((W, C), -100, np.int64) if labelled else None
    boundary = np.full((W, L, 2), -100, np.int64) if labelled and all(w.boundary is not None for _, w in wins) else None
    words = np.zeros(W, np.int64)
    doc = np.zeros(W, np.int64)
    for n, (d, w) in enumerate(wins):
        n_text, c = len(w.input_ids), len(w.span_pos)
        ids[n, :n_text], mask[n, :n_text] = w.input_ids, 1
        first[n, :c], last[n, :c] = w.span_pos[:, 0], w.span_pos[:, 1]
        shape[n, :c], span_mask[n, :c], span_word[n, :c] = w.span_shape, True, w.span_word
        if labels is not None:
            labels[n, :c] = w.labels
        if boundary is not None:
            boundary[n, :n_text] = w.boundary
        words[n], doc[n] = w.words, d
    t = torch.from_numpy
    return WindowBatch(t(ids), t(mask), t(first), t(last), t(shape), t(span_mask), t(span_word), None if labels is None else t(labels),
                       None if boundary is None else t(boundary), t(words), t(doc), len(features))


def collate_spans(featurizer: SpanFeaturizer, features: list[DocSpanFeatures]) -> SpanBatch:
    """The dense packed layout (module docstring)."""
    insts: list[tuple[int, SpanInstance]] = [(d, x) for d, f in enumerate(features) for x in f.instances]
    N = max(1, len(insts))
    L = max((len(x.input_ids) for _, x in insts), default=2)
    K = max((len(x.span_pos) for _, x in insts), default=1) or 1
    T = L + 2 * K
    ids = np.full((N, T), featurizer.pad_id, np.int32)
    pos = np.zeros((N, T), np.int32)
    mask = np.zeros((N, T, T), np.int32)
    mask[:, :, 0] = 1  # padding rows (text rows and real marker rows are set below)
    text_start = np.zeros((N, K), np.int32)
    text_end = np.zeros((N, K), np.int32)
    shape = np.zeros((N, K, 4), np.int32)
    span_mask = np.zeros((N, K), bool)
    span_word = np.zeros((N, K, 3), np.int64)
    labelled = bool(insts) and all(x.labels is not None for _, x in insts)
    labels = np.full((N, K), -100, np.int64) if labelled else None
    inst_doc = np.zeros(N, np.int64)
    starts, ends = L + np.arange(K), L + K + np.arange(K)
    for n, (d, x) in enumerate(insts):
        n_text, k = len(x.input_ids), len(x.span_pos)
        ids[n, :n_text] = x.input_ids
        pos[n, :n_text] = np.arange(n_text)
        mask[n, :n_text, :n_text] = 1
        s, e = starts[:k], ends[:k]
        ids[n, s], ids[n, e] = featurizer.start_marker, featurizer.end_marker
        pos[n, s], pos[n, e] = x.span_pos[:, 0], x.span_pos[:, 1]
        markers = np.concatenate([s, e])
        mask[n, markers, :n_text] = 1
        mask[n, markers, markers] = 1
        mask[n, s, e] = 1
        mask[n, e, s] = 1
        text_start[n, :k], text_end[n, :k] = x.span_pos[:, 0], x.span_pos[:, 1]
        shape[n, :k] = x.span_shape
        span_mask[n, :k] = True
        span_word[n, :k] = x.span_word
        if labels is not None:
            labels[n, :k] = x.labels
        inst_doc[n] = d
    t = torch.from_numpy
    return SpanBatch(t(ids), t(pos), t(mask), t(np.tile(starts, (N, 1)).astype(np.int32)), t(np.tile(ends, (N, 1)).astype(np.int32)),
                     t(text_start), t(text_end), t(shape), t(span_mask), t(span_word), None if labels is None else t(labels), t(inst_doc),
                     len(features))


def dense_from_windows(batch: WindowBatch, pair_length: int, marker_ids: list[int]) -> SpanBatch:
    """The dense packed layout of a WindowBatch (each window's candidates K at a time, each instance with the
    window's text), built with tensor ops: lets the runtime serve the original's pass for comparison."""
    W, L = batch.input_ids.shape
    C = batch.span_first.shape[1]
    K = min(pair_length, C)
    G = -(-C // K)  # instances per window (padded)
    pad_c = G * K - C

    def groups(t: torch.Tensor, fill) -> torch.Tensor:  # [W, C, ...] -> [W * G, K, ...]
        t = torch.cat([t, t.new_full((W, pad_c, *t.shape[2:]), fill)], 1) if pad_c else t
        return t.reshape(W * G, K, *t.shape[2:])

    first, last = groups(batch.span_first, 0), groups(batch.span_last, 0)
    span_mask, span_word, shape = groups(batch.span_mask, False), groups(batch.span_word, 0), groups(batch.span_shape, 0)
    labels = None if batch.labels is None else groups(batch.labels, -100)
    keep = span_mask.any(1)
    keep[torch.arange(0, W * G, G)] |= ~keep.view(W, G).any(1)  # a window without candidates keeps one (empty) instance
    first, last, span_mask, span_word, shape = first[keep], last[keep], span_mask[keep], span_word[keep], shape[keep]
    labels = None if labels is None else labels[keep]
    owner = torch.arange(W).repeat_interleave(G)[keep]
    N, T = len(owner), L + 2 * K
    text_ids, text_mask = batch.input_ids[owner], batch.attention_mask[owner] > 0
    starts, ends = torch.arange(L, L + K), torch.arange(L + K, L + 2 * K)
    ids = torch.cat([text_ids, text_ids.new_full((N, K), marker_ids[0]), text_ids.new_full((N, K), marker_ids[1])], 1)
    pos = torch.cat([torch.arange(L, dtype=torch.int32).expand(N, L), first, last], 1).to(torch.int32)
    mask = torch.zeros(N, T, T, dtype=torch.int32)
    mask[:, :, 0] = 1
    mask[:, :L, :L] = (text_mask[:, :, None] & text_mask[:, None, :]).int()
    real = span_mask[:, :, None] & text_mask[:, None, :]  # [N, K, L]
    mask[:, L:L + K, :L] = real.int()
    mask[:, L + K:, :L] = real.int()
    for a, b in ((starts, starts), (ends, ends), (starts, ends), (ends, starts)):
        mask[:, a, b] = span_mask.int()
    return SpanBatch(ids.to(torch.int32), pos, mask, starts.expand(N, K).to(torch.int32), ends.expand(N, K).to(torch.int32),
                     first, last, shape, span_mask, span_word, labels, batch.instance_doc[owner], batch.num_docs)
