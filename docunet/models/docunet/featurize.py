"""Documents -> token ids with entity markers, shared by training, evaluation and the runtime.

Every mention gets a start marker before its first word piece and an end marker after its last one
(typed `[unusedN]` markers for BERT vocabularies as the original DocuNet does, or `*` for any
vocabulary). A mention is represented by the position of its start marker. Nothing is truncated:
documents longer than one encoder window are split into windows later (batching.py).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...documents import Document, data_error
from ..tokens import special_tokens
from .config import DocuNetConfig


@dataclass
class DocFeatures:
    """One featurized document. Positions index `input_ids` (special tokens included)."""

    input_ids: np.ndarray  # [L] int32: prefix, word pieces and markers, suffix
    mention_pos: np.ndarray  # [M] int64: start-marker position of every mention, entity-major order
    mention_entity: np.ndarray  # [M] int64: the entity each mention belongs to
    num_entities: int
    pairs: np.ndarray  # [P, 2] int64: the (head, tail) pairs that are predicted / scored
    pair_labels: np.ndarray | None  # [P, R] bool multi-hot, column 0 = no relation; None when unlabelled

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


class Featurizer:
    """Turns Documents into DocFeatures with one batched call to a Hugging Face fast tokenizer."""

    def __init__(self, tokenizer, config: DocuNetConfig):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("a fast (Rust) tokenizer is required for word alignment")
        self.tokenizer = tokenizer
        self.config = config
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.label_index = {label: i for i, label in enumerate(config.relations)}
        self._type_index = {t: i for i, t in enumerate(config.entity_types)}
        # things the input does that the model was not trained for: message -> mentions (shown by the runtime)
        self.notes: Counter[str] = Counter()
        self.start_ids, self.end_ids = self._marker_ids()

    def _marker_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """Marker ids per entity-type index; the last slot serves types unseen in training."""
        n = len(self.config.entity_types) + 1
        if self.config.markers == "asterisk":
            ids = self.tokenizer("*", add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise ValueError(f"'*' is not a single token in this vocabulary ({ids})")
            return np.full(n, ids[0], np.int64), np.full(n, ids[0], np.int64)
        if n > 25:
            raise ValueError(f"typed markers support at most 24 entity types, got {n - 1}: use markers='asterisk'")
        starts, ends = [], []
        unk = self.tokenizer.unk_token_id
        for k in range(n):
            for token, out in ((f"[unused{2 * k + 1}]", starts), (f"[unused{2 * k + 51}]", ends)):
                tid = self.tokenizer.convert_tokens_to_ids(token)
                if tid is None or tid == unk:
                    raise ValueError(
                        f"this vocabulary has no {token} token, so typed markers would become unknown tokens; "
                        "use markers='asterisk' (the `*` scheme) for this encoder")
                out.append(tid)
        return np.asarray(starts, np.int64), np.asarray(ends, np.int64)

    def type_index(self, etype: str) -> int:
        """The marker slot of an entity type; types unseen in training share the last slot (and are noted)."""
        index = self._type_index.get(etype)
        if index is None:
            index = len(self.config.entity_types)
            self.notes[f"entity type {etype!r} is not one of the model's types ({', '.join(self.config.entity_types)}); "
                       f"its mentions get the marker for unseen types"] += 1
        return index

    def __call__(self, docs: list[Document]) -> list[DocFeatures]:
        if not docs:
            return []
        words = [[w for s in d.sents for w in s] for d in docs]
        enc = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False, verbose=False)  # no length warning: we window
        return [self._one(d, w, enc["input_ids"][i], enc.word_ids(i)) for i, (d, w) in enumerate(zip(docs, words))]

    def _one(self, doc: Document, words: list[str], piece_ids: list[int], piece_word: list[int | None]) -> DocFeatures:
        n_words = len(words)
        offsets = np.cumsum([0] + [len(s) for s in doc.sents])
        # Markers per word: the type of the first mention (entity-major order) starting / ending there.
        start_type = np.full(n_words, -1, np.int64)
        end_type = np.full(n_words, -1, np.int64)
        mention_word, mention_entity = [], []
        for e, mentions in enumerate(doc.entities):
            if not mentions:
                raise data_error(doc.source, f"entity {e} has no mentions", f"vertexSet[{e}]", doc.title)
            for m in mentions:
                first, last = offsets[m.sent_id] + m.start, offsets[m.sent_id] + m.end - 1
                t = self.type_index(m.type)
                if start_type[first] < 0:
                    start_type[first] = t
                if end_type[last] < 0:
                    end_type[last] = t
                mention_word.append(first)
                mention_entity.append(e)
        pw = np.asarray([-1 if w is None else w for w in piece_word], np.int64)
        n_pieces = np.bincount(pw[pw >= 0], minlength=n_words)
        has_start, has_end = (start_type >= 0).astype(np.int64), (end_type >= 0).astype(np.int64)
        pieces_before = np.cumsum(n_pieces) - n_pieces
        markers_before = np.cumsum(has_start + has_end) - (has_start + has_end)
        p = len(self.prefix)
        start_pos = p + pieces_before + markers_before
        end_pos = start_pos + has_start + n_pieces
        length = p + len(piece_ids) + int(has_start.sum() + has_end.sum()) + len(self.suffix)
        ids = np.empty(length, np.int32)
        ids[:p] = self.prefix
        ids[length - len(self.suffix) :] = self.suffix
        pieces = np.asarray(piece_ids, np.int64)
        ids[p + np.arange(len(pieces)) + markers_before[pw] + has_start[pw]] = pieces
        ids[start_pos[has_start > 0]] = self.start_ids[start_type[has_start > 0]]
        ids[end_pos[has_end > 0]] = self.end_ids[end_type[has_end > 0]]
        pairs = np.asarray(doc.scored_pairs(), np.int64).reshape(-1, 2)
        return DocFeatures(
            input_ids=ids,
            mention_pos=start_pos[np.asarray(mention_word, np.int64)],
            mention_entity=np.asarray(mention_entity, np.int64),
            num_entities=doc.num_entities,
            pairs=pairs,
            pair_labels=self._labels(doc, pairs),
        )

    def _labels(self, doc: Document, pairs: np.ndarray) -> np.ndarray | None:
        if doc.relations is None:
            return None
        labels = np.zeros((len(pairs), len(self.config.relations)), bool)
        row = {(int(h), int(t)): i for i, (h, t) in enumerate(pairs)}
        for r in doc.relations:
            if r.label not in self.label_index:
                raise data_error(doc.source, f"relation {r.label!r} is not in the model's vocabulary", "labels", doc.title)
            i = row.get((r.head, r.tail))
            if i is None:
                raise data_error(doc.source, f"relation {r.label} ({r.head}, {r.tail}) is not a scored pair", "labels", doc.title)
            labels[i, self.label_index[r.label]] = True
        labels[:, 0] = ~labels[:, 1:].any(axis=1)
        return labels

