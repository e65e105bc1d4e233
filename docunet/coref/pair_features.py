"""Pair features for learned coreference: two mentions' strings, types and positions (cheap, always
available), plus the rule baseline's decision (`rules.cluster_mentions`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .rules import (
    DEFAULT_RULES,
    MentionLike,
    acronym_of,
    cluster_mentions,
    initials,
    mention_text,
    normalise_words,
)

TYPES = ("PER", "ORG", "LOC", "TIME", "NUM", "MISC")
TYPE_PAIRS = tuple((a, b) for i, a in enumerate(TYPES) for b in TYPES[i:])
BUCKETS = ((0, 0), (1, 1), (2, 2), (3, 4), (5, 8), (9, None))  # edit and sentence distances
_BUCKET_NAMES = tuple(f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}" for lo, hi in BUCKETS)

STRING_FEATURES = (
    "exact", "casefold", "normalised", "jaccard", "same_first", "same_last", "prefix_subset",
    "suffix_subset", "acronym", "word_is_first", "word_is_last", "char_prefix", "common_prefix",
    *(f"edit_{b}" for b in _BUCKET_NAMES), "edit_norm", "length_ratio",
)
FEATURE_NAMES = (
    *STRING_FEATURES, "per_first_name", "per_last_name", "same_type",
    *(f"types_{a}_{b}" for a, b in TYPE_PAIRS), "types_other",
    *(f"sent_{b}" for b in _BUCKET_NAMES), "overlap", "rule_same",
)


def bucket(value: int) -> int:
    """Index of `value` in BUCKETS (0, 1, 2, 3-4, 5-8, 9+)."""
    for k, (lo, hi) in enumerate(BUCKETS):
        if value >= lo and (hi is None or value <= hi):
            return k
    return 0


@lru_cache(maxsize=65536)
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (characters; insert, delete, substitute cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class _Info:
    """What the string features need of one mention string, computed once per mention."""

    text: str
    fold: str
    words: tuple[str, ...]
    joined: str  # normalised words joined by spaces
    acronym: str
    initials: str

    @classmethod
    def of(cls, text: str) -> _Info:
        words = normalise_words(text)
        return cls(text, text.casefold(), words, " ".join(words), acronym_of(text).upper(), initials(text).upper())


def _word_of_other(a: tuple[str, ...], b: tuple[str, ...], pos: int) -> bool:
    """One of the two is one word and it is the other's (multi-word) first (pos=0) or last (-1) word."""
    return (len(a) == 1 < len(b) and a[0] == b[pos]) or (len(b) == 1 < len(a) and b[0] == a[pos])


def _affix(a: tuple[str, ...], b: tuple[str, ...], prefix: bool) -> bool:
    """The shorter word tuple is a proper prefix (or suffix) of the longer one."""
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if len(short) == len(long):
        return False
    return long[:len(short)] == short if prefix else long[-len(short):] == short


def _common_prefix(a: str, b: str) -> int:
    k = 0
    for ca, cb in zip(a, b):
        if ca != cb:
            break
        k += 1
    return k


def string_features(a: _Info, b: _Info) -> list[float]:
    """STRING_FEATURES of two mention strings; symmetric in a and b. `char_prefix`: the shorter
    normalised string (3+ characters) starts the longer one ("Ecuador" ~ "Ecuadorian");
    `common_prefix`: shared leading characters over the shorter length."""
    sa, sb = set(a.words), set(b.words)
    shorter = min(len(a.joined), len(b.joined))
    prefix = _common_prefix(a.joined, b.joined)
    dist = edit_distance(a.text, b.text)
    edit = [0.0] * len(BUCKETS)
    edit[bucket(dist)] = 1.0
    longest = max(len(a.text), len(b.text), 1)
    return [
        float(a.text == b.text), float(a.fold == b.fold), float(a.words == b.words),
        len(sa & sb) / len(sa | sb), float(a.words[0] == b.words[0]), float(a.words[-1] == b.words[-1]),
        float(_affix(a.words, b.words, True)), float(_affix(a.words, b.words, False)),
        float(bool(a.acronym and a.acronym == b.initials) or bool(b.acronym and b.acronym == a.initials)),
        float(_word_of_other(a.words, b.words, 0)), float(_word_of_other(a.words, b.words, -1)),
        float(shorter >= 3 and prefix == shorter), prefix / max(shorter, 1), *edit, dist / longest, min(len(a.text), len(b.text)) / longest,
    ]


_TYPE_INDEX = {pair: k for k, pair in enumerate(TYPE_PAIRS)}
_FIRST, _LAST = STRING_FEATURES.index("word_is_first"), STRING_FEATURES.index("word_is_last")


def _type_pair_index(ta: str, tb: str) -> int:
    """Index of the unordered type pair in TYPE_PAIRS; len(TYPE_PAIRS) for a type outside TYPES."""
    if ta in TYPES and tb in TYPES:
        return _TYPE_INDEX[(ta, tb) if TYPES.index(ta) <= TYPES.index(tb) else (tb, ta)]
    return len(TYPE_PAIRS)


def pair_features(mentions: Sequence[MentionLike],
                  sents: Sequence[Sequence[str]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j of a document's mentions: (pairs [P, 2] int64, features [P, len(FEATURE_NAMES)]
    float32). String features are computed once per distinct pair of strings."""
    n = len(mentions)
    rows, cols = np.triu_indices(n, 1)
    pairs = np.stack([rows, cols], axis=1).astype(np.int64)
    feats = np.zeros((len(pairs), len(FEATURE_NAMES)), dtype=np.float32)
    if n < 2:
        return pairs, feats
    texts = [mention_text(m, sents) for m in mentions]
    infos = {t: _Info.of(t) for t in set(texts)}
    cluster_of = [0] * n
    for c, members in enumerate(cluster_mentions(mentions, DEFAULT_RULES, sents)):
        for i in members:
            cluster_of[i] = c
    cache: dict[tuple[str, str], list[float]] = {}
    per = DEFAULT_RULES.person_types
    ns = len(STRING_FEATURES)
    for p, (i, j) in enumerate(zip(rows.tolist(), cols.tolist())):
        key = (texts[i], texts[j]) if texts[i] <= texts[j] else (texts[j], texts[i])
        if (sf := cache.get(key)) is None:
            sf = cache[key] = string_features(infos[key[0]], infos[key[1]])
        a, b = mentions[i], mentions[j]
        both_per = a.type in per and b.type in per
        row = feats[p]
        row[:ns] = sf
        row[ns] = both_per and sf[_FIRST] > 0
        row[ns + 1] = both_per and sf[_LAST] > 0
        row[ns + 2] = a.type == b.type
        row[ns + 3 + _type_pair_index(a.type, b.type)] = 1.0
        k = ns + 4 + len(TYPE_PAIRS)
        row[k + bucket(abs(a.sent_id - b.sent_id))] = 1.0
        row[k + len(BUCKETS)] = a.sent_id == b.sent_id and a.start < b.end and b.start < a.end
        row[k + len(BUCKETS) + 1] = cluster_of[i] == cluster_of[j]
    return pairs, feats
