"""Split raw text into sentences of words with exact character offsets.

Words come from spaCy's rule-based `blank("en")` tokenizer (closest to DocRED's tokenization, see
../shared/docs/PIPELINE_NOTES.md section 3), sentence boundaries from spaCy's `sentencizer`: with the
opener fix below it matches Re-DocRED's sentences better than `sentencex` (F1 0.978 vs 0.957 on
spaced text, benchmarks/results/text-split), needs no extra package and stays linear on long CJK
text, where sentencex is not; `splitter="sentencex"` remains for comparison. On top of them:

- a word is a maximal run of non-whitespace characters inside one spaCy token (whitespace is what
  `str.isspace` says, U+2028, U+001C-U+001F and NBSP included), so every other character, control
  characters and NUL included, belongs to exactly one word and `text[start:end] == word`;
- tokens that would cut a user-perceived character (combining marks, emoji skin tones, ZWJ emoji
  sequences, flags, variation selectors) are merged back, so no such character is split between words;
- the ideographic full stop and fullwidth ! ? also split words, so CJK text gets sentences;
- a bracket or opening quote left at a sentence's end (`rock. "Surreal" is`) starts the next one;
- a blank line (two line breaks) or U+2029 always ends a sentence; a single line break does not
  (hard-wrapped text);
- a sentence is at most MAX_SENT_WORDS words: longer runs (lists, tables, text without
  punctuation) are cut, preferring a line break, then clause punctuation, in their second half.
"""
from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from docunet.documents import Document

MAX_SENT_WORDS = 200  # longest sentence in words (Re-DocRED dev's longest: 112)
SPACY_MAX_LENGTH = 10**9  # spaCy refuses longer texts (its default, 10**6, is for parser/NER memory)

Splitter = Literal["spacy", "sentencex"]

_WORD = re.compile(r"\S+")  # for str patterns \s is exactly str.isspace
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # str.splitlines' breaks
_CJK_STOPS = r"[\u3002\uff01\uff1f\uff61]"  # 。！？｡
_CLAUSE_END = frozenset(",;:)]}\u3001\uff0c\uff1b")  # preferred cut after these in over-long sentences
_OPENERS = frozenset("([{\u201c\u2018\u00ab\u201e\u00bf\u00a1")  # ( [ { “ ‘ « „ ¿ ¡


@dataclass(frozen=True)
class SplitText:
    """Sentences of words and, of the same shape, each word's [start, end) in the original text."""

    sents: list[list[str]]
    offsets: list[list[tuple[int, int]]]


@functools.lru_cache(maxsize=1)
def _spacy_pipeline() -> Any:
    """spaCy blank English tokenizer + sentencizer, built once (no model download)."""
    import spacy
    from spacy.util import compile_infix_regex

    nlp = spacy.blank("en")
    nlp.tokenizer.infix_finditer = compile_infix_regex([*nlp.Defaults.infixes, _CJK_STOPS]).finditer
    nlp.add_pipe("sentencizer")
    nlp.max_length = SPACY_MAX_LENGTH
    return nlp


def _extends_cluster(ch: str) -> bool:
    """True for characters that continue the previous character (grapheme extenders)."""
    cp = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Mc", "Me") or cp == 0x200D or 0xFE00 <= cp <= 0xFE0F
            or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or 0xE0100 <= cp <= 0xE01EF)


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _joins(text: str, pos: int, word_start: int) -> bool:
    """Whether a cut at `pos` (inside a run of non-space characters starting at `word_start`) would
    split one user-perceived character."""
    if _extends_cluster(text[pos]) or text[pos - 1] == "\u200d":
        return True
    if _is_regional(text[pos]) and _is_regional(text[pos - 1]):
        run = 0  # flags are pairs of regional indicators: join when an odd number precedes
        while pos - run - 1 >= word_start and _is_regional(text[pos - run - 1]):
            run += 1
        return run % 2 == 1
    return False


def _paragraph_break(gap: str) -> bool:
    return "\u2029" in gap or len(_LINE_BREAK.findall(gap)) >= 2


def _cut(text: str, spans: list[tuple[int, int]]) -> int:
    """Where to cut an over-long sentence: after a line break, else after clause punctuation, in the
    second half of the first MAX_SENT_WORDS words; else right after MAX_SENT_WORDS words."""
    lo = MAX_SENT_WORDS // 2
    for c in range(MAX_SENT_WORDS, lo, -1):
        if _LINE_BREAK.search(text, spans[c - 1][1], spans[c][0]):
            return c
    for c in range(MAX_SENT_WORDS, lo, -1):
        if text[spans[c - 1][1] - 1] in _CLAUSE_END:
            return c
    return MAX_SENT_WORDS


def _bounded(text: str, sentences: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    out = []
    for spans in sentences:
        while len(spans) > MAX_SENT_WORDS:
            c = _cut(text, spans)
            out.append(spans[:c])
            spans = spans[c:]
        out.append(spans)
    return out


def _opens(text: str, span: tuple[int, int], quotes: list[int]) -> bool:
    """Whether the word at `span` opens what follows (bracket, opening quote): then it starts a sentence.
    A straight quote opens when it has space before and none after; spaced on both sides (or neither),
    a double quote opens when an even number of double quotes precede it."""
    start, end = span
    word = text[start:end]
    if word in _OPENERS:
        return True
    if word not in ('"', "'"):
        return False
    space_before = start == 0 or text[start - 1].isspace()
    space_after = end == len(text) or text[end].isspace()
    if space_before != space_after:
        return space_before
    return word == '"' and bisect.bisect_left(quotes, start) % 2 == 0


def _move_openers(text: str, sentences: list[list[tuple[int, int]]]) -> None:
    """Move brackets and opening quotes that a splitter left at a sentence's end (`end. "Next"`) to
    the start of the next sentence."""
    quotes: list[int] | None = None
    for i in range(len(sentences) - 1):
        sent = sentences[i]
        while len(sent) > 1 and text[sent[-1][0]:sent[-1][1]] in ('"', "'", *_OPENERS):
            if quotes is None:
                quotes = [m.start() for m in re.finditer('"', text)]
            if not _opens(text, sent[-1], quotes):
                break
            sentences[i + 1].insert(0, sent.pop())


def _sentencex_starts(text: str) -> list[int]:
    try:
        import sentencex
    except ImportError as e:
        raise ImportError("splitter='sentencex' needs the sentencex package: pip install sentencex") from e

    return [b["start_index"] for b in sentencex.get_sentence_boundaries("en", text)[1:]]


def split_text(text: str, *, splitter: Splitter = "spacy") -> SplitText:
    """Sentences of words of `text`, with each word's character [start, end) in `text`.

    `splitter` picks the sentence boundaries: spaCy's sentencizer (default) or sentencex (an
    optional package); the words are spaCy's either way. Empty or whitespace-only text gives none.
    """
    if splitter not in ("spacy", "sentencex"):
        raise ValueError(f"unknown sentence splitter {splitter!r} (spacy or sentencex)")
    if not text or text.isspace():
        return SplitText([], [])
    doc = _spacy_pipeline()(text)
    starts = _sentencex_starts(text) if splitter == "sentencex" else None
    next_start = 0  # index into `starts`
    sentences: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    new_sentence = False
    for token in doc:
        if splitter == "spacy" and token.is_sent_start:
            new_sentence = True
        if token.is_space:
            continue
        idx = token.idx
        for m in _WORD.finditer(token.text):
            start, end = idx + m.start(), idx + m.end()
            if current and current[-1][1] == start and _joins(text, start, current[-1][0]):
                current[-1] = (current[-1][0], end)
                new_sentence = False
                continue
            if starts is not None:
                while next_start < len(starts) and starts[next_start] <= start:
                    new_sentence = True
                    next_start += 1
            if current and (new_sentence or _paragraph_break(text[current[-1][1]:start])):
                sentences.append(current)
                current = []
            new_sentence = False
            current.append((start, end))
    if current:
        sentences.append(current)
    _move_openers(text, sentences)
    offsets = _bounded(text, sentences)
    return SplitText([[text[s:e] for s, e in spans] for spans in offsets], offsets)


def document_from_text(text: str, title: str = "", source: str = "", *, splitter: Splitter = "spacy") -> Document:
    """An unlabelled Document (no entities yet) from raw text, keeping the text and word offsets."""
    split = split_text(text, splitter=splitter)
    return Document(title=title, sents=split.sents, entities=[], relations=None, source=source, text=text,
                    word_offsets=split.offsets)
