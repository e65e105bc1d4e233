"""Documents -> PL-Marker span windows: candidate spans, context windows, word shapes and packing.

For every sentence: the candidate spans are all spans of up to W words (start-major, then end, so
neighbouring spans are adjacent); the sentence sits in a window of `max_seq_length` word pieces filled
with the document's text on both sides (as the original does). Consecutive sentences whose windows are
the same share it: one `SpanWindow` holds the text once and all its candidates (a document that fits the
window is one window; a longer one gets a window per group of sentences, see `SpanFeaturizer._windows`). The dense packed pass (the original's) splits a window's candidates
K at a time into instances (`DocSpanFeatures.instances`); the text-once pass scores them all against the
window's text, computed once. Shared by training and serving.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...documents import Document
from ..tokens import special_tokens
from .config import PLMarkerNERConfig

# word shapes (the encoder is often uncased: capitalisation is invisible to it)
NO_WORD, LOWER, TITLE, UPPER, MIXED, DIGIT, OTHER = range(7)
NUM_SHAPES = 7


MIN_CASED_WORDS = 5  # shorter texts ("paris", "NASA") are too short to call one-case
# capitals only where a sentence starts: only texts this long are called sentence case, since a shorter text written
# properly may simply have no name inside a sentence ("The meeting was moved to the morning.")
MIN_SENTENCE_CASE_WORDS = 20


def _cased_letters(words: Sequence[str]) -> str:
    return "".join(c for w in words for c in w if c.isalpha() and c.lower() != c.upper())  # cased scripts only


def one_case(sents: Sequence[Sequence[str]]) -> str | None:
    """How a text lost its capitalisation: "lower" or "upper" when its cased letters are all lower case or all
    capitals (speech recognition, chat, headlines, telexes); "sentence" when the only capitals are the first letters
    of sentences and the pronoun "I" (speech recognition with punctuation restored), for texts of at least
    MIN_SENTENCE_CASE_WORDS words; None for mixed case, uncased scripts (CJK) and texts of fewer than
    MIN_CASED_WORDS words with letters, which are too short to call."""
    words = [w for s in sents for w in s if any(c.isalpha() for c in w)]
    letters = _cased_letters(words)
    if len(words) < MIN_CASED_WORDS or len(letters) < MIN_CASED_WORDS:
        return None
    if letters.islower():
        return "lower"
    if letters.isupper():
        return "upper"
    if len(words) >= MIN_SENTENCE_CASE_WORDS:
        rest = []  # every word with letters but "I", without the first letter of a sentence's first word
        for sent in sents:
            with_letters = [w for w in sent if any(c.isalpha() for c in w)]
            rest += [w for w in with_letters[1:] if w != "I"] + [w[1:] for w in with_letters[:1]]
        rest_letters = _cased_letters(rest)
        if rest_letters and rest_letters.islower():
            return "sentence"
    return None


@lru_cache(maxsize=1)
def _closed_class_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS  # spaCy's English stop words: determiners, pronouns, prepositions...

    return frozenset(STOP_WORDS)


def guessed_shape(word: str) -> int:
    """The shape a word of one-case text most likely had as written: a closed-class word ("the", "of", "was")
    lower case, any other word with letters Title, digits and punctuation as they are."""
    shape = word_shape(word)
    if shape in (DIGIT, OTHER):
        return shape
    return LOWER if word.casefold() in _closed_class_words() else TITLE


def guesses_shapes(case: str | None, one_case_shapes: str) -> bool:
    """Whether text of this `one_case` kind gets guessed shapes under the one_case_shapes setting: "guess" for
    lower case and capitals, "guess-sentence-case" for those and sentence case, "literal" never."""
    if case is None or one_case_shapes == "literal":
        return False
    return case != "sentence" or one_case_shapes == "guess-sentence-case"


def word_shapes(sents: Sequence[Sequence[str]], one_case_shapes: str = "guess") -> np.ndarray:
    """The shape of every word of a document, in reading order. Text that lost its capitalisation (`one_case`) gets
    guessed shapes (`guessed_shape`) when the setting says so (`guesses_shapes`): measured on Re-DocRED [400:500]
    with the shipped entity model, typed mention F1 46.6 -> 78.4 in lower case, 74.6 -> 78.4 in capitals and
    49.6 -> 78.4 in sentence case (84.1 as written; benchmarks/ner_short_texts.py --case)."""
    shape = guessed_shape if guesses_shapes(one_case(sents), one_case_shapes) else word_shape
    return np.asarray([shape(w) for s in sents for w in s], np.int64)


def word_shape(word: str) -> int:
    """lower, Title, UPPER (two letters or more), MiXed, has a digit, or other (punctuation, symbols)."""
    if any(c.isdigit() for c in word):
        return DIGIT
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return OTHER
    if all(c.islower() for c in letters):
        return LOWER
    if all(c.isupper() for c in letters):
        return UPPER if len(letters) > 1 else TITLE
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return TITLE
    return MIXED


@dataclass
class SpanInstance:
    """One packed instance of the dense pass: a text window and up to K candidate spans in it."""

    input_ids: np.ndarray  # [L] int64: prefix, window pieces, suffix
    span_pos: np.ndarray  # [k, 2] int64: positions (in input_ids) of each span's first and last piece
    span_word: np.ndarray  # [k, 3] int64: sentence, first word, one past the last word
    span_shape: np.ndarray  # [k, 4] int64: shapes of the first, last, previous and next word
    labels: np.ndarray | None  # [k] int64: 0 = no entity, t + 1 = entity_types[t]; None when unlabelled


@dataclass
class SpanWindow(SpanInstance):
    """A text window and every candidate span of the sentences it is the window of."""

    boundary: np.ndarray | None = None  # [L, 2] int64: is a gold span's first / last piece; -100 outside these sentences
    words: int = 0  # words of its sentences (the pruning budget is a fraction of them)

    def chunks(self, k: int) -> list[SpanInstance]:
        """The dense pass's instances: the candidates K at a time, each with the window's text."""
        n = len(self.span_pos)
        return [SpanInstance(self.input_ids, self.span_pos[i : i + k], self.span_word[i : i + k], self.span_shape[i : i + k],
                             None if self.labels is None else self.labels[i : i + k]) for i in range(0, n, k)]


@dataclass
class DocSpanFeatures:
    windows: list[SpanWindow]
    pair_length: int  # K of the dense pass

    @property
    def instances(self) -> list[SpanInstance]:
        return [x for w in self.windows for x in w.chunks(self.pair_length)]

    @property
    def length(self) -> int:
        """Tokens the encoder sees for this document: each window's text plus two markers per span."""
        return sum(len(x.input_ids) + 2 * len(x.span_pos) for x in self.windows)


class SpanFeaturizer:
    """Turns Documents into DocSpanFeatures with one batched call to a Hugging Face fast tokenizer."""

    def __init__(self, tokenizer, config: PLMarkerNERConfig):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("a fast (Rust) tokenizer is required for word alignment")
        self.tokenizer, self.config = tokenizer, config
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.start_marker, self.end_marker = self._marker_ids()
        if not config.marker_ids:
            config.marker_ids = [self.start_marker, self.end_marker]
        elif list(config.marker_ids) != [self.start_marker, self.end_marker]:
            raise ValueError(f"the model's marker ids {config.marker_ids} are not this tokenizer's "
                             f"{[self.start_marker, self.end_marker]}: a checkpoint's tokenizer files do not belong to it")
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

    def _windows(self, doc: Document, first: np.ndarray, last: np.ndarray, n_pieces: int) -> list[tuple[int, int, list[int]]]:
        """(lo, hi, sentences): a document that fits the text window is one window; a longer one is cut into groups
        of consecutive sentences of at most half a window each, every group centred in `budget` pieces of document
        text (each sentence keeps at least a quarter window of context on each side where the document has it; the
        original centres a window on every sentence, which costs a long document one window per sentence)."""
        budget = self.config.text_window - len(self.prefix) - len(self.suffix)
        bounds, offset = [], 0
        for sent in doc.sents:
            bounds.append((int(first[offset]), int(last[offset + len(sent) - 1]) + 1))
            offset += len(sent)
        if n_pieces <= budget:
            return [(0, n_pieces, list(range(len(doc.sents))))]
        groups: list[list[int]] = []
        for sid, (ps, pe) in enumerate(bounds):
            if groups and pe - bounds[groups[-1][0]][0] <= budget // 2:
                groups[-1].append(sid)
            else:
                groups.append([sid])
        out = []
        for g in groups:
            ps, pe = bounds[g[0]][0], bounds[g[-1]][1]
            if pe - ps >= budget:
                lo, hi = ps, ps + budget
            else:
                lo = max(0, ps - (budget - (pe - ps)) // 2)
                hi = min(n_pieces, lo + budget)
                lo = max(0, hi - budget)
            out.append((lo, hi, g))
        return out

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
        shapes = word_shapes(doc.sents, cfg.one_case_shapes)
        sent_start = np.cumsum([0] + [len(s) for s in doc.sents])
        gold = self._gold(doc)
        pieces_arr = np.asarray(pieces, np.int64)
        pre = len(self.prefix)
        windows: list[SpanWindow] = []
        for lo, hi, sids in self._windows(doc, first, last, len(pieces_arr)):
            spans, words, shape, labels = [], [], [], []
            boundary = np.full((pre + hi - lo + len(self.suffix), 2), -100, np.int64) if gold is not None else None
            for sid in sids:
                ws, n = int(sent_start[sid]), len(doc.sents[sid])
                if boundary is not None:  # the pieces of this window's own sentences are labelled
                    a, b = max(int(first[ws]), lo), min(int(last[ws + n - 1]) + 1, hi)
                    boundary[pre + a - lo : pre + b - lo] = 0
                for i in range(n):
                    for j in range(i, min(i + cfg.max_span_width, n)):
                        a, b = int(first[ws + i]), int(last[ws + j])
                        if b >= hi:
                            self.notes["candidate spans past the longest encoder window of a sentence were not scored"] += 1
                            continue
                        spans.append((a - lo + pre, b - lo + pre))
                        words.append((sid, i, j + 1))
                        shape.append((shapes[ws + i], shapes[ws + j], shapes[ws + i - 1] if i > 0 else NO_WORD,
                                      shapes[ws + j + 1] if j + 1 < n else NO_WORD))
                        label = gold.get((sid, i, j + 1), 0) if gold is not None else 0
                        labels.append(label)
                        if label and boundary is not None:
                            boundary[a - lo + pre, 0] = 1
                            boundary[b - lo + pre, 1] = 1
            text = np.concatenate([np.asarray(self.prefix, np.int64), pieces_arr[lo:hi], np.asarray(self.suffix, np.int64)])
            windows.append(SpanWindow(text, np.asarray(spans, np.int64).reshape(-1, 2), np.asarray(words, np.int64).reshape(-1, 3),
                                      np.asarray(shape, np.int64).reshape(-1, 4),
                                      None if gold is None else np.asarray(labels, np.int64), boundary,
                                      sum(len(doc.sents[s]) for s in sids)))
        return DocSpanFeatures(windows, cfg.max_pair_length)
