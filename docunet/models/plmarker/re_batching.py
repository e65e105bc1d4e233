"""Relation features -> padded tensors, in the layouts of the two passes.

`SubjectBatch` (the text-once pass): one row per subject instance, its text with the solid markers (padded) and
all its objects; the levitated markers are built inside the model (re_modeling.ObjectGraph).

`PackedBatch` (the original's dense packed pass, the reference): one row per packed instance, T = Lmax + 2 Kmax
tokens: the text (padded to Lmax), the K object start markers (padded to Kmax), then the K end markers. Position
ids: the text counts 0..L-1 (the solid markers are text); an object's start marker takes the position of its
first word piece, its end marker that of its last. Attention: text attends to text only; an object marker attends
to the text, to itself and to its partner; padding rows attend to the first token.

Both carry the same bookkeeping for decoding: each row's sentence (into the batch's sentence tables), subject and
objects (indices into that sentence's span table), and the tables (span words, types, entities, document).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .re_featurize import DocREFeatures, REFeaturizer, REInstance


def _to(batch, device):
    moved = {f.name: getattr(batch, f.name) for f in fields(batch)}
    return type(batch)(**{k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in moved.items()})


@dataclass
class SentenceTables:
    """The entity spans of every sentence of a batch: [S, n] padded."""

    sent_doc: torch.Tensor  # [S] int64: the document (in the batch)
    sent_id: torch.Tensor  # [S] int64: the sentence in its document
    span_word: torch.Tensor  # [S, n, 2] int64: first word, one past the last word
    span_type: torch.Tensor  # [S, n] int64: index into entity_types, -1 unknown
    span_entity: torch.Tensor  # [S, n] int64: document entity index
    span_mask: torch.Tensor  # [S, n] bool
    type_names: list[list[str]]  # the spans' types as given, per sentence

    def to(self, device) -> "SentenceTables":
        return _to(self, device)


@dataclass
class SubjectBatch:
    input_ids: torch.Tensor  # [N, L] int32: each subject's text with its solid markers, padded
    attention_mask: torch.Tensor  # [N, L] int32
    sub_pos: torch.Tensor  # [N, 2] int32: the solid markers' positions
    obj_first: torch.Tensor  # [N, C] int32: each object's first word piece (its start marker's position)
    obj_last: torch.Tensor  # [N, C] int32
    obj_markers: torch.Tensor  # [N, C, 2] int32: marker indices (into config.marker_ids)
    obj_mask: torch.Tensor  # [N, C] bool
    labels: torch.Tensor | None  # [N, C] int64, -100 padding; None when unlabelled
    ner_labels: torch.Tensor  # [N, C] int64, -100 padding and unknown types
    sentence: torch.Tensor  # [N] int64: row -> sentence table
    sub_index: torch.Tensor  # [N] int64: the subject in its sentence's spans (-1: dummy)
    obj_index: torch.Tensor  # [N, C] int64
    tables: SentenceTables
    num_docs: int

    @property
    def batch_size(self) -> int:
        return self.num_docs

    def to(self, device) -> "SubjectBatch":
        return _to(self, device)


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # [N, T] int32
    position_ids: torch.Tensor  # [N, T] int32
    attention_mask: torch.Tensor  # [N, T, T] int32 (1: may attend)
    sub_pos: torch.Tensor  # [N, 2] int32
    obj_start: torch.Tensor  # [N, K] int32: where each object's start marker sits
    obj_end: torch.Tensor  # [N, K] int32
    obj_mask: torch.Tensor  # [N, K] bool
    labels: torch.Tensor | None
    ner_labels: torch.Tensor
    sentence: torch.Tensor
    sub_index: torch.Tensor
    obj_index: torch.Tensor
    tables: SentenceTables
    num_docs: int

    @property
    def batch_size(self) -> int:
        return self.num_docs

    def to(self, device) -> "PackedBatch":
        return _to(self, device)


def sentence_tables(features: list[DocREFeatures]) -> tuple[SentenceTables, list[int]]:
    """The batch's sentence tables and each document's first sentence row."""
    sents = [(d, s) for d, f in enumerate(features) for s in f.sentences]
    offsets = list(np.cumsum([0] + [len(f.sentences) for f in features])[:-1])
    S, n = max(1, len(sents)), max([len(s.spans) for _, s in sents] + [1])
    word = np.zeros((S, n, 2), np.int64)
    typ = np.full((S, n), -1, np.int64)
    ent = np.full((S, n), -1, np.int64)
    mask = np.zeros((S, n), bool)
    doc, sid = np.zeros(S, np.int64), np.zeros(S, np.int64)
    for i, (d, s) in enumerate(sents):
        k = len(s.spans)
        word[i, :k], typ[i, :k], ent[i, :k], mask[i, :k] = s.spans, s.types, s.entities, True
        doc[i], sid[i] = d, s.sent_id
    t = torch.from_numpy
    return SentenceTables(t(doc), t(sid), t(word), t(typ), t(ent), t(mask), [s.type_names for _, s in sents]), offsets


def _rows(features: list[DocREFeatures], packed: bool) -> tuple[list[tuple[int, REInstance]], SentenceTables]:
    tables, offsets = sentence_tables(features)
    rows = [(offsets[d] + x.sentence, x) for d, f in enumerate(features) for x in (f.packed if packed else f.instances)]
    return rows, tables


def _objects(rows: list[tuple[int, REInstance]], C: int) -> dict[str, np.ndarray]:
    N = max(1, len(rows))
    labelled = bool(rows) and all(x.labels is not None for _, x in rows)
    out = {"obj_mask": np.zeros((N, C), bool), "ner_labels": np.full((N, C), -100, np.int64),
           "labels": np.full((N, C), -100, np.int64) if labelled else None, "sentence": np.zeros(N, np.int64),
           "sub_index": np.full(N, -1, np.int64), "obj_index": np.zeros((N, C), np.int64), "sub_pos": np.zeros((N, 2), np.int32)}
    for n, (s, x) in enumerate(rows):
        k = len(x.obj_pos)
        out["obj_mask"][n, :k], out["ner_labels"][n, :k], out["obj_index"][n, :k] = True, x.ner_labels, x.obj_index
        if out["labels"] is not None:
            out["labels"][n, :k] = x.labels
        out["sentence"][n], out["sub_index"][n], out["sub_pos"][n] = s, x.sub_index, x.sub_pos
    return out


def _tensors(obj: dict[str, np.ndarray]) -> dict[str, torch.Tensor | None]:
    return {k: None if v is None else torch.from_numpy(v) for k, v in obj.items()}


def collate_subjects(featurizer: REFeaturizer, features: list[DocREFeatures]) -> SubjectBatch:
    rows, tables = _rows(features, packed=False)
    N = max(1, len(rows))
    L = max((len(x.input_ids) for _, x in rows), default=2)
    C = max((len(x.obj_pos) for _, x in rows), default=1) or 1
    ids = np.full((N, L), featurizer.pad_id, np.int32)
    mask = np.zeros((N, L), np.int32)
    mask[:, 0] = 1
    first, last = np.zeros((N, C), np.int32), np.zeros((N, C), np.int32)
    markers = np.zeros((N, C, 2), np.int32)
    for n, (_, x) in enumerate(rows):
        k = len(x.obj_pos)
        ids[n, : len(x.input_ids)], mask[n, : len(x.input_ids)] = x.input_ids, 1
        first[n, :k], last[n, :k], markers[n, :k] = x.obj_pos[:, 0], x.obj_pos[:, 1], x.obj_markers
    t = torch.from_numpy
    return SubjectBatch(t(ids), t(mask), obj_first=t(first), obj_last=t(last), obj_markers=t(markers), tables=tables,
                        num_docs=len(features), **_tensors(_objects(rows, C)))


def collate_packed(featurizer: REFeaturizer, features: list[DocREFeatures]) -> PackedBatch:
    """The original's dense packed layout (module docstring)."""
    rows, tables = _rows(features, packed=True)
    N = max(1, len(rows))
    L = max((len(x.input_ids) for _, x in rows), default=2)
    K = max((len(x.obj_pos) for _, x in rows), default=1) or 1
    T = L + 2 * K
    ids = np.full((N, T), featurizer.pad_id, np.int32)
    pos = np.zeros((N, T), np.int32)
    mask = np.zeros((N, T, T), np.int32)
    mask[:, :, 0] = 1  # padding rows (text rows and real marker rows are set below)
    starts, ends = L + np.arange(K), L + K + np.arange(K)
    vocab = np.asarray(featurizer.marker_ids, np.int64)
    for n, (_, x) in enumerate(rows):
        n_text, k = len(x.input_ids), len(x.obj_pos)
        ids[n, :n_text], pos[n, :n_text] = x.input_ids, np.arange(n_text)
        mask[n, :n_text, :n_text] = 1
        s, e = starts[:k], ends[:k]
        ids[n, s], ids[n, e] = vocab[x.obj_markers[:, 0]], vocab[x.obj_markers[:, 1]]
        pos[n, s], pos[n, e] = x.obj_pos[:, 0], x.obj_pos[:, 1]
        both = np.concatenate([s, e])
        mask[n, both, :n_text] = 1
        mask[n, both, both] = 1
        mask[n, s, e] = mask[n, e, s] = 1
    t = torch.from_numpy
    index = lambda a: t(np.tile(a, (N, 1)).astype(np.int32))  # noqa: E731
    return PackedBatch(t(ids), t(pos), t(mask), obj_start=index(starts), obj_end=index(ends), tables=tables,
                       num_docs=len(features), **_tensors(_objects(rows, K)))
