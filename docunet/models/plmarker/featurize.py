"""Documents -> PL-Marker span instances: candidate spans, context windows and neighbourhood packing.

For every sentence: the candidate spans are all spans of up to W words (start-major, then end, so
neighbouring spans are adjacent); the sentence sits in a window of `max_seq_length` word pieces filled
with the document's text on both sides (as the original does); the candidates are packed K at a time
into instances, each of which carries the window's text and, later (batching.py), one levitated start
and end marker per candidate. Shared by training and serving.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...documents import Document
from ..tokens import special_tokens
from .config import PLMarkerNERConfig


@dataclass
class SpanInstance:
    """One packed instance: a text window and up to K candidate spans in it."""

    input_ids: np.ndarray  # [L] int64: prefix, window pieces, suffix
    span_pos: np.ndarray  # [k, 2] int64: positions (in input_ids) of each span's first and last piece
    span_word: np.ndarray  # [k, 3] int64: sentence, first word, one past the last word
    labels: np.ndarray | None  # [k] int64: 0 = no entity, t + 1 = entity_types[t]; None when unlabelled


@dataclass
class DocSpanFeatures:
    instances: list[SpanInstance]

    @property
    def length(self) -> int:
        """Tokens the encoder sees for this document: text plus two markers per span, over its instances."""
        return sum(len(x.input_ids) + 2 * len(x.span_pos) for x in self.instances)


class SpanFeaturizer:
    """Turns Documents into DocSpanFeatures with one batched call to a Hugging Face fast tokenizer."""

    def __init__(self, tokenizer, config: PLMarkerNERConfig):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("a fast (Rust) tokenizer is required for word alignment")
        self.tokenizer, self.config = tokenizer, config
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.start_marker, self.end_marker = self._marker_ids()
        self.type_index = {t: i + 1 for i, t in enumerate(config.entity_types)}
        self.notes: Counter[str] = Counter()

    def _marker_ids(self) -> tuple[int, int]:
        """[unused0] / [unused1] as the original for BERT vocabularies, else the mask token for both."""
        unk = self.tokenizer.unk_token_id
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in ("[unused0]", "[unused1]")]
        if all(i is not None and i != unk for i in ids):
            return ids[0], ids[1]
        mask = self.tokenizer.mask_token_id
        if mask is None:
            raise ValueError("this vocabulary has neither [unused0]/[unused1] nor a mask token for the span markers")
        return mask, mask

    def __call__(self, docs: list[Document]) -> list[DocSpanFeatures]:
        if not docs:
            return []
        words = [[w for s in d.sents for w in s] for d in docs]
        enc = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False, verbose=False)
        return [self._one(d, enc["input_ids"][i], enc.word_ids(i)) for i, d in enumerate(docs)]

    def _gold(self, doc: Document) -> dict[tuple[int, int, int], int] | None:
        if doc.relations is None and not any(doc.entities):
            return None
        gold: dict[tuple[int, int, int], int] = {}
        for mentions in doc.entities:
            for m in mentions:
                label = self.type_index.get(m.type)
                if label is None:
                    self.notes[f"entity type {m.type!r} is not one of the model's types; its spans count as no entity"] += 1
                    continue
                gold.setdefault((m.sent_id, m.start, m.end), label)
        return gold

    def _one(self, doc: Document, pieces: list[int], piece_word: list[int | None]) -> DocSpanFeatures:
        cfg = self.config
        n_words = sum(len(s) for s in doc.sents)
        pw = np.asarray([-1 if w is None else w for w in piece_word], np.int64)
        first = np.full(n_words, -1, np.int64)
        last = np.full(n_words, -1, np.int64)
        idx = np.nonzero(pw >= 0)[0]
        last[pw[idx]] = idx  # later pieces overwrite: the last one
        first[pw[idx[::-1]]] = idx[::-1]  # earlier pieces overwrite: the first one
        empty = first < 0  # words the tokenizer turned into nothing (control characters...): point at a neighbour
        if empty.any():
            for w in np.nonzero(empty)[0]:
                prev = last[:w][last[:w] >= 0]
                first[w] = last[w] = prev[-1] if len(prev) else 0
        gold = self._gold(doc)
        budget = cfg.text_window - len(self.prefix) - len(self.suffix)
        pieces_arr = np.asarray(pieces, np.int64)
        instances: list[SpanInstance] = []
        offset = 0
        for sid, sent in enumerate(doc.sents):
            ws, we = offset, offset + len(sent)
            offset = we
            ps, pe = int(first[ws]), int(last[we - 1]) + 1
            if pe - ps >= budget:
                lo, hi = ps, ps + budget
            else:
                lo = max(0, ps - (budget - (pe - ps)) // 2)
                hi = min(len(pieces_arr), lo + budget)
                lo = max(0, hi - budget)
            spans, words, labels = [], [], []
            for i in range(len(sent)):
                for j in range(i, min(i + cfg.max_span_width, len(sent))):
                    a, b = int(first[ws + i]), int(last[ws + j])
                    if b >= hi:
                        self.notes["candidate spans past the longest encoder window of a sentence were not scored"] += 1
                        continue
                    spans.append((a - lo + len(self.prefix), b - lo + len(self.prefix)))
                    words.append((sid, i, j + 1))
                    labels.append(gold.get((sid, i, j + 1), 0) if gold is not None else 0)
            text = np.concatenate([np.asarray(self.prefix, np.int64), pieces_arr[lo:hi], np.asarray(self.suffix, np.int64)])
            for k in range(0, len(spans), cfg.max_pair_length):
                instances.append(SpanInstance(text, np.asarray(spans[k : k + cfg.max_pair_length], np.int64).reshape(-1, 2),
                                              np.asarray(words[k : k + cfg.max_pair_length], np.int64).reshape(-1, 3),
                                              None if gold is None else np.asarray(labels[k : k + cfg.max_pair_length], np.int64)))
        return DocSpanFeatures(instances)
