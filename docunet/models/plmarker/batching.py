"""Span instances -> padded tensors with levitated markers, explicit positions and the [N, T, T] mask.

Layout of an instance (T = Lmax + 2 Kmax): the text (padded to Lmax), then the K start markers (padded
to Kmax), then the K end markers. Position ids: the text counts 0..L-1; the start marker of span j
takes the position of the span's first word piece, its end marker that of the last one. Attention:
text attends to text only; a marker attends to the text, to itself and to its partner; padding rows
attend to the first token (any finite row). So the text's states never depend on the markers.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .featurize import DocSpanFeatures, SpanFeaturizer


@dataclass
class SpanBatch:
    input_ids: torch.Tensor  # [N, T] int32
    position_ids: torch.Tensor  # [N, T] int32
    attention_mask: torch.Tensor  # [N, T, T] int32 (1: may attend)
    start_index: torch.Tensor  # [N, K] int32: where each span's start marker sits
    end_index: torch.Tensor  # [N, K] int32
    text_start: torch.Tensor  # [N, K] int32: the span's first word piece
    text_end: torch.Tensor  # [N, K] int32: its last word piece
    span_mask: torch.Tensor  # [N, K] bool
    span_word: torch.Tensor  # [N, K, 3] int64: sentence, first word, one past the last word
    labels: torch.Tensor | None  # [N, K] int64, -100 for padding; None when unlabelled
    instance_doc: torch.Tensor  # [N] int64: the document (in the batch) each instance belongs to
    num_docs: int

    @property
    def batch_size(self) -> int:
        return self.num_docs

    def to(self, device) -> "SpanBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return SpanBatch(**{k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in moved.items()})


def collate_spans(featurizer: SpanFeaturizer, features: list[DocSpanFeatures]) -> SpanBatch:
    insts = [(d, x) for d, f in enumerate(features) for x in f.instances]
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
        span_mask[n, :k] = True
        span_word[n, :k] = x.span_word
        if labels is not None:
            labels[n, :k] = x.labels
        inst_doc[n] = d
    t = torch.from_numpy
    return SpanBatch(t(ids), t(pos), t(mask), t(np.tile(starts, (N, 1)).astype(np.int32)), t(np.tile(ends, (N, 1)).astype(np.int32)),
                     t(text_start), t(text_end), t(span_mask), t(span_word), None if labels is None else t(labels), t(inst_doc),
                     len(features))
