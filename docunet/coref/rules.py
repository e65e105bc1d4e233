"""Rule-based coreference: group predicted mentions into entities without a model.

Rules (each switchable in `CorefRules`, so a benchmark can show what each one adds):
- string: mentions with the same string (raw, or normalised: case-folded, no diacritics, no
  punctuation, no leading "the", no possessive 's) and the same type are one entity;
- cross_type: also merge identical strings of different types (DocRED types one name
  inconsistently now and then);
- person_names: a one-word PER mention joins the earlier multi-word PER mention whose first or
  last word it is ("Smith" -> "John Smith"), unless two different PER entities match;
- acronyms: a one-word all-capitals ORG/LOC/MISC mention ("UN", "U.N.") joins the entity of the
  same type whose multi-word mention has those initials ("United Nations"), unless two match.

Everything is dictionary look-ups over a union-find: linear in the number of mentions.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..documents import Mention, PredictedSpan

MentionLike = Mention | PredictedSpan
CrossType = Literal["none", "exact", "normalised"]

_POSSESSIVE = re.compile(r"\s*['’]s\b", re.IGNORECASE)


@dataclass(frozen=True)
class CorefRules:
    """Which rules run. `cross_type`: "none" (string matches need the same type), "exact"
    (identical raw strings merge across types) or "normalised" (identical normalised strings do)."""

    string_match: bool = True
    normalise: bool = True
    cross_type: CrossType = "none"
    person_names: bool = True
    acronyms: bool = True
    person_types: tuple[str, ...] = ("PER",)
    acronym_types: tuple[str, ...] = ("ORG", "LOC", "MISC")


DEFAULT_RULES = CorefRules()


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _no_punct(text: str) -> str:
    """Punctuation dropped: periods and apostrophes join ("U.N." -> "UN"), the rest splits words."""
    out = []
    for c in text:
        if c in ".'’":
            continue
        out.append(" " if unicodedata.category(c).startswith("P") else c)
    return "".join(out)


def normalise_words(text: str) -> tuple[str, ...]:
    """The words of a mention string, normalised for matching (see the module doc)."""
    words = _no_punct(_strip_accents(_POSSESSIVE.sub("", text))).casefold().split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return tuple(words) if words else (text.casefold().strip(),)


def initials(text: str) -> str:
    """The initials of a mention's capitalised words ("The United Nations" -> "UN"); "" for one word."""
    words = _no_punct(_strip_accents(text).replace("-", " ")).split()
    if words and words[0].casefold() == "the":
        words = words[1:]
    if len(words) < 2:
        return ""
    letters = "".join(w[0] for w in words if w[0].isupper())
    return letters if len(letters) >= 2 else ""


def acronym_of(text: str) -> str:
    """The acronym a one-word all-capitals mention spells ("U.N." -> "UN"), else ""."""
    word = _strip_accents(text).replace(".", "").replace(" ", "")
    return word if len(word) >= 2 and word.isalpha() and word.isupper() else ""


def mention_text(mention: MentionLike, sents: Sequence[Sequence[str]] | None = None) -> str:
    """The mention's string: its `text` / `name`, else its words in `sents`."""
    text = getattr(mention, "text", "") or getattr(mention, "name", "")
    if not text and sents is not None:
        text = " ".join(sents[mention.sent_id][mention.start:mention.end])
    return text


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def _merge_equal(uf: _UnionFind, keys: Sequence[object]) -> None:
    first: dict[object, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            uf.union(first[key], i)
        else:
            first[key] = i


def _only_other(candidates: set[int], own: int) -> int | None:
    """The one candidate entity other than `own`, or None (none, or ambiguous); O(1)."""
    if len(candidates) > 2:
        return None
    others = [c for c in candidates if c != own]
    return others[0] if len(others) == 1 else None


def _link_person_names(uf: _UnionFind, order: list[int], words: list[tuple[str, ...]],
                       types: list[str], person_types: tuple[str, ...]) -> None:
    """One-word PER mentions join the one earlier multi-word PER entity whose first/last word they are."""
    roots = [uf.find(i) for i in range(len(words))]  # entities as they stand before this rule
    seen: dict[str, set[int]] = {}  # first or last word -> entities of earlier multi-word names
    links = []
    for i in order:
        if types[i] not in person_types:
            continue
        if len(words[i]) > 1:
            for w in {words[i][0], words[i][-1]}:
                seen.setdefault(w, set()).add(roots[i])
        else:
            if (target := _only_other(seen.get(words[i][0], set()), roots[i])) is not None:
                links.append((i, target))
    for i, j in links:
        uf.union(i, j)


def _link_acronyms(uf: _UnionFind, texts: list[str], types: list[str], acronym_types: tuple[str, ...]) -> None:
    """One-word acronyms join the one entity of the same type whose multi-word mention has those initials."""
    n = len(texts)
    roots = [uf.find(i) for i in range(n)]
    long_forms: dict[tuple[str, str], set[int]] = {}
    for i in range(n):
        if types[i] in acronym_types and (key := initials(texts[i])):
            long_forms.setdefault((types[i], key.upper()), set()).add(roots[i])
    links = []
    for i in range(n):
        acro = acronym_of(texts[i]) if types[i] in acronym_types else ""
        target = _only_other(long_forms.get((types[i], acro), set()), roots[i]) if acro else None
        if target is not None:
            links.append((i, target))
    for i, j in links:
        uf.union(i, j)


def cluster_mentions(mentions: Sequence[MentionLike], rules: CorefRules = DEFAULT_RULES,
                     sents: Sequence[Sequence[str]] | None = None) -> list[list[int]]:
    """Clusters of indices into `mentions`: each mention in exactly one cluster, mentions ordered by
    position (sentence, start, end) inside a cluster and clusters by their first mention.

    A mention's string is its `text` (PredictedSpan) or `name` (Mention), else its words in `sents`."""
    n = len(mentions)
    if n == 0:
        return []
    texts = [mention_text(m, sents) for m in mentions]
    types = [m.type for m in mentions]
    words = [normalise_words(t) for t in texts]
    order = sorted(range(n), key=lambda i: (mentions[i].sent_id, mentions[i].start, mentions[i].end, i))
    uf = _UnionFind(n)
    if rules.string_match:
        strings = ["".join(w) for w in words] if rules.normalise else texts
        typed = rules.cross_type != "normalised"
        _merge_equal(uf, [(t, s) if typed else s for s, t in zip(strings, types)])
        if rules.cross_type == "exact":
            _merge_equal(uf, texts)
    if rules.person_names:
        _link_person_names(uf, order, words, types, rules.person_types)
    if rules.acronyms:
        _link_acronyms(uf, texts, types, rules.acronym_types)
    clusters: dict[int, list[int]] = {}
    for i in order:
        clusters.setdefault(uf.find(i), []).append(i)
    return list(clusters.values())  # dict order = order of each cluster's first mention


def entities_from_clusters(mentions: Sequence[MentionLike], clusters: Sequence[Sequence[int]],
                           sents: Sequence[Sequence[str]] | None = None) -> list[list[Mention]]:
    """Document entities (lists of Mention) from mentions and their clusters, for DocuNet's input."""
    return [[Mention(m.sent_id, m.start, m.end, m.type, mention_text(m, sents))
             for m in (mentions[i] for i in cluster)] for cluster in clusters]
