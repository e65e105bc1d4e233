"""Documents -> PL-Marker relation instances (subject-oriented packing).

One instance per (sentence, subject span): the subject wrapped in solid markers inserted into the word pieces
of the sentence's text window (the document context around it, cut as the NER featurizer cuts it), and every
entity span of the sentence (the subject included, as the original) as a levitated object marker pair whose
position ids are its first and last word piece, shifted past the inserted solid markers. `REInstance` holds
all objects of a subject (the text-once pass scores them against the subject's text, encoded once);
`REInstance.chunks(K)` gives the original's packed instances of at most K objects, each with the whole text.
Labels of an ordered (subject, object) pair come from re_config.LabelSpace. Shared by training and serving.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from ...documents import Document
from .config import PLMarkerNERConfig
from .featurize import SpanFeaturizer
from .re_config import PLMarkerREConfig

DUMMY = -1  # sub_index of the dummy subject (training only; its solid markers sit after the text, objects unshifted)


@dataclass
class SentenceSpans:
    """The entity spans of one sentence, the table subjects and objects index into."""

    sent_id: int
    spans: np.ndarray  # [n, 2] int64: first word, one past the last word (in the sentence)
    types: np.ndarray  # [n] int64: index into config.entity_types, -1 for a type the model does not know
    type_names: list[str]  # the spans' types as given
    entities: np.ndarray  # [n] int64: the document entity each span is a mention of


@dataclass
class REInstance:
    """A subject with its solid markers in the text, and its objects as levitated marker pairs."""

    input_ids: np.ndarray  # [L] int64: prefix, window pieces with the two solid markers, suffix (dummy: markers last)
    sub_pos: np.ndarray  # [2] int64: positions of the subject's solid start and end markers
    obj_pos: np.ndarray  # [k, 2] int64: each object's first and last word piece in input_ids (its markers' positions)
    obj_markers: np.ndarray  # [k, 2] int64: each object's start and end marker, as indices into config.marker_ids
    obj_index: np.ndarray  # [k] int64: the object in the sentence's span table
    ner_labels: np.ndarray  # [k] int64: entity-type labels of the objects (t + 1), -100 for unknown types
    labels: np.ndarray | None  # [k] int64: pair classes (LabelSpace); None when unlabelled
    sentence: int  # index into DocREFeatures.sentences
    sub_index: int  # the subject in the span table, DUMMY for the dummy subject

    def chunks(self, k: int) -> list["REInstance"]:
        """The original's packed instances: the objects K at a time, each with the subject's whole text."""
        n = len(self.obj_pos)
        return [replace(self, obj_pos=self.obj_pos[i : i + k], obj_markers=self.obj_markers[i : i + k],
                        obj_index=self.obj_index[i : i + k], ner_labels=self.ner_labels[i : i + k],
                        labels=None if self.labels is None else self.labels[i : i + k]) for i in range(0, max(n, 1), k)]


@dataclass
class DocREFeatures:
    instances: list[REInstance]  # one per subject
    sentences: list[SentenceSpans]
    pair_length: int  # K of the dense pass
    dummies: list[REInstance] = field(default_factory=list)  # labelled documents: a dummy subject per sentence (training)

    @property
    def packed(self) -> list[REInstance]:
        return [c for x in self.instances for c in x.chunks(self.pair_length)]

    @property
    def length(self) -> int:
        """Tokens the encoder sees: each subject's text plus two markers per object."""
        return sum(len(x.input_ids) + 2 * len(x.obj_pos) for x in self.instances)


def piece_bounds(piece_word: list[int | None], n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last word piece of every word; a word the tokenizer turned into nothing points at the last piece
    of the word before it (as the NER featurizer does)."""
    pw = np.asarray([-1 if w is None else w for w in piece_word], np.int64)
    first = np.full(n_words, -1, np.int64)
    last = np.full(n_words, -1, np.int64)
    idx = np.nonzero(pw >= 0)[0]
    last[pw[idx]] = idx
    first[pw[idx[::-1]]] = idx[::-1]
    for w in np.nonzero(first < 0)[0]:
        prev = last[:w][last[:w] >= 0]
        first[w] = last[w] = prev[-1] if len(prev) else 0
    return first, last


def marker_vocabulary(tokenizer, n_types: int, typed: bool) -> list[int]:
    """[solid start, solid end, levitated start, levitated end] = [unused0..3] (the original's ids 1-4 in BERT
    vocabularies), then with `typed` the same four per entity type, [unused4 + 4t + j]. Vocabularies without
    [unusedN] tokens use the mask token for every marker (untyped only)."""
    n = 4 + (4 * n_types if typed else 0)
    unk = tokenizer.unk_token_id
    ids = [tokenizer.convert_tokens_to_ids(f"[unused{i}]") for i in range(n)]
    if all(i is not None and i != unk for i in ids):
        return ids
    if typed:
        raise ValueError(f"type markers need [unused0]..[unused{n - 1}] in the vocabulary")
    if tokenizer.mask_token_id is None:
        raise ValueError("this vocabulary has neither [unused0]..[unused3] nor a mask token for the markers")
    return [tokenizer.mask_token_id] * 4


class REFeaturizer:
    """Turns Documents into DocREFeatures with one batched call to a Hugging Face fast tokenizer."""

    def __init__(self, tokenizer, config: PLMarkerREConfig):
        self.tokenizer, self.config = tokenizer, config
        # the NER featurizer's windows, for a text two pieces shorter (room for the solid markers)
        inner = PLMarkerNERConfig(entity_types=list(config.entity_types), max_seq_length=max(8, config.text_window - 2),
                                  encoder_config={}, max_pair_length=1, max_span_width=1)
        self.windows = SpanFeaturizer(tokenizer, inner)
        self.prefix, self.suffix, self.pad_id = self.windows.prefix, self.windows.suffix, self.windows.pad_id
        ids = marker_vocabulary(tokenizer, len(config.entity_types), config.type_markers)
        if not config.marker_ids:
            config.marker_ids = ids
        elif list(config.marker_ids) != ids:
            raise ValueError(f"the model's marker ids {config.marker_ids} are not this tokenizer's {ids}: "
                             "a checkpoint's tokenizer files do not belong to it")
        self.marker_ids = ids
        self.type_index = {t: i for i, t in enumerate(config.entity_types)}
        self.labels = config.labels
        self.notes: Counter[str] = Counter()

    def __call__(self, docs: list[Document]) -> list[DocREFeatures]:
        if not docs:
            return []
        words = [[w for s in d.sents for w in s] for d in docs]
        enc = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False, verbose=False)
        return [self._one(d, enc["input_ids"][i], enc.word_ids(i)) for i, d in enumerate(docs)]

    def markers(self, kind: int, types: np.ndarray) -> np.ndarray:
        """Marker indices (into marker_ids) of kind 0 solid start, 1 solid end, 2 levitated start, 3 levitated end
        for spans of these types: type-specific with config.type_markers (unknown types and the dummy: untyped)."""
        if not self.config.type_markers:
            return np.full(len(types), kind, np.int64)
        return np.where(types >= 0, 4 + 4 * types + kind, kind).astype(np.int64)

    def sentence_spans(self, doc: Document) -> list[SentenceSpans]:
        """Every distinct mention span of each sentence, sorted by (start, end); the first type given wins."""
        by_sent: list[dict[tuple[int, int], tuple[str, int]]] = [{} for _ in doc.sents]
        for e, mentions in enumerate(doc.entities):
            for m in mentions:
                by_sent[m.sent_id].setdefault((m.start, m.end), (m.type, e))
        out = []
        for sid, spans in enumerate(by_sent):
            keys = sorted(spans)
            names = [spans[k][0] for k in keys]
            for t in names:
                if t not in self.type_index:
                    self.notes[f"entity type {t!r} is not one of the model's types: untyped markers, no type label"] += 1
            out.append(SentenceSpans(sid, np.asarray(keys, np.int64).reshape(-1, 2),
                                     np.asarray([self.type_index.get(t, -1) for t in names], np.int64), names,
                                     np.asarray([spans[k][1] for k in keys], np.int64)))
        return out

    def gold(self, doc: Document) -> dict[tuple[int, int, int, int, int], int] | None:
        """(sentence, subject start, end, object start, end) -> class for both directions of every relation between
        mentions of the same sentence, as the original: the given directions first (a pair given two relations keeps
        the later), then each reversed pair not given itself gets the inverse class (the class itself if symmetric)."""
        if doc.relations is None:
            return None
        pairs: list[tuple[tuple[int, int, int, int, int], tuple[int, int, int, int, int], str]] = []
        for r in doc.relations:
            if r.label not in self.labels.index:
                self.notes[f"relation {r.label!r} is not one of the model's relations: not used"] += 1
                continue
            for mh in doc.entities[r.head]:
                for mt in doc.entities[r.tail]:
                    if mh.sent_id == mt.sent_id:
                        pairs.append(((mh.sent_id, mh.start, mh.end, mt.start, mt.end), (mh.sent_id, mt.start, mt.end, mh.start, mh.end),
                                      r.label))
        out = {given: self.labels.index[label] for given, _, label in pairs}
        for _, reverse, label in pairs:
            out.setdefault(reverse, self.labels.labels_of(label)[1])
        return out

    def _one(self, doc: Document, pieces: list[int], piece_word: list[int | None]) -> DocREFeatures:
        first, last = piece_bounds(piece_word, doc.num_words)
        sentences = self.sentence_spans(doc)
        gold = self.gold(doc)
        sent_start = np.cumsum([0] + [len(s) for s in doc.sents])
        pieces_arr = np.asarray(pieces, np.int64)
        instances: list[REInstance] = []
        dummies: list[REInstance] = []
        for lo, hi, sids in self.windows._windows(doc, first, last, len(pieces_arr)):
            text = np.concatenate([np.asarray(self.prefix, np.int64), pieces_arr[lo:hi], np.asarray(self.suffix, np.int64)])
            for sid in sids:
                spans = sentences[sid]
                if not len(spans.spans):
                    continue
                base = int(sent_start[sid])
                # each span's first / last piece in `text` (before any solid marker), and whether it is in the window
                a = first[base + spans.spans[:, 0]] - lo + len(self.prefix)
                b = last[base + spans.spans[:, 1] - 1] - lo + len(self.prefix)
                inside = last[base + spans.spans[:, 1] - 1] < hi
                if not inside.all():
                    self.notes["entity spans past the end of their sentence's text window were left out"] += int((~inside).sum())
                for s in np.nonzero(inside)[0]:
                    instances.append(self._instance(text, spans, a, b, inside, int(s), sid, gold))
                if gold is not None and self.config.dummy_subject:
                    dummies.append(self._instance(text, spans, a, b, inside, DUMMY, sid, gold))
        return DocREFeatures(instances, sentences, self.config.max_pair_length, dummies)

    def _instance(self, text: np.ndarray, spans: SentenceSpans, a: np.ndarray, b: np.ndarray, inside: np.ndarray,
                  s: int, sentence: int, gold: dict | None) -> REInstance:
        """The subject's text with its solid markers; the objects' positions shifted past them (compared on words,
        as the original: a piece at or after the subject's first word moves one right, after its last word two)."""
        ids = np.asarray(self.marker_ids, np.int64)
        objects = np.nonzero(inside)[0]
        p, q = a[objects].copy(), b[objects].copy()
        if s == DUMMY:
            solid = self.markers(0, np.asarray([-1])), self.markers(1, np.asarray([-1]))
            input_ids = np.concatenate([text, ids[solid[0]], ids[solid[1]]])
            sub_pos = np.asarray([len(text), len(text) + 1], np.int64)
        else:
            ws, we = spans.spans[s]
            t = spans.types[s : s + 1]
            input_ids = np.concatenate([text[: a[s]], ids[self.markers(0, t)], text[a[s] : b[s] + 1], ids[self.markers(1, t)],
                                        text[b[s] + 1 :]])
            sub_pos = np.asarray([a[s], b[s] + 2], np.int64)
            os_, oe = spans.spans[objects, 0], spans.spans[objects, 1] - 1  # objects' first and last word
            p += (os_ >= ws).astype(np.int64) + (os_ > we - 1)
            q += (oe >= ws).astype(np.int64) + (oe > we - 1)
        types = spans.types[objects]
        markers = np.stack([self.markers(2, types), self.markers(3, types)], 1)
        ner = np.where(types >= 0, types + 1, -100)
        labels = None
        if gold is not None:
            sub = (-1, -1) if s == DUMMY else tuple(int(x) for x in spans.spans[s])
            labels = np.asarray([gold.get((spans.sent_id, *sub, int(x), int(y)), 0) for x, y in spans.spans[objects]], np.int64)
        return REInstance(input_ids, sub_pos, np.stack([p, q], 1).reshape(-1, 2), markers.reshape(-1, 2), objects.astype(np.int64),
                          ner.astype(np.int64), labels, sentence, s)
