"""Rule-based coreference: group predicted mentions into entities without a model.

Rules (each switchable in `CorefRules`, so a benchmark can show what each one adds):
- string: mentions with the same string (raw, or normalised: case-folded, no diacritics, no
  punctuation, no leading "the", no possessive 's) and the same type are one entity;
- cross_type: also merge identical strings of different types. On by default (normalised strings): an entity model
  types one name inconsistently now and then ("Opel" ORG here, MISC there), which splits an entity; on gold
  mentions, whose types are consistent, it costs a little (benchmarks/results/coref-rules and coref-predicted);
- person_names: a one-word PER mention joins the earlier multi-word PER mention whose first or
  last word it is ("Smith" -> "John Smith"), unless two different PER entities match
  (names_any_order: a later full name too);
- acronyms: a one-word all-capitals ORG/LOC/MISC mention ("UN", "U.N.") joins the entity of the
  same type whose multi-word mention has those initials ("United Nations"), unless two match.
Off by default, because DocRED-schema annotations mostly keep these apart (measured in benchmarks/coref_rules.py):
- demonyms: "Canadian" joins "Canada", "American" joins "the United States" (place types);
- years: a bare year joins the one entity with a longer date ending in it ("1943" -> "12 July 1943");
- partial_names: a capitalised mention that begins or ends a longer one of the same type joins it
  ("Vikings" -> "Minnesota Vikings").

Everything is dictionary look-ups over a union-find: linear in the number of mentions (the demonym rule compares a
one-word place mention with each distinct place name of its document).
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from ..documents import Mention, PredictedSpan

MentionLike = Mention | PredictedSpan
CrossType = Literal["none", "exact", "normalised"]

_POSSESSIVE = re.compile(r"\s*['’]s\b", re.IGNORECASE)


@dataclass(frozen=True)
class CorefRules:
    """Which rules run (see the module doc). `cross_type`: "none" (string matches need the same type), "exact"
    (identical raw strings merge across types) or "normalised" (identical normalised strings do)."""

    string_match: bool = True
    normalise: bool = True
    cross_type: CrossType = "normalised"
    person_names: bool = True
    acronyms: bool = True
    person_types: tuple[str, ...] = ("PER",)
    acronym_types: tuple[str, ...] = ("ORG", "LOC", "MISC")
    names_any_order: bool = False
    demonyms: bool = False
    place_types: tuple[str, ...] = ("LOC",)
    years: bool = False
    time_types: tuple[str, ...] = ("TIME",)
    partial_names: bool = False
    partial_types: tuple[str, ...] = ("ORG", "LOC", "MISC")


DEFAULT_RULES = CorefRules()
_CROSS_TYPES: tuple[str, ...] = get_args(CrossType)


def with_rule_settings(rules: CorefRules, settings: dict) -> CorefRules:
    """`rules` with some fields replaced (a bundle's pipeline.json, `--setting coref.KEY=VALUE`); a ValueError names
    an unknown field or a value of the wrong kind. Lists become tuples (type lists read from JSON)."""
    fields = [f.name for f in dataclasses.fields(CorefRules)]
    changes = {}
    for key, value in settings.items():
        if key not in fields:
            raise ValueError(f"unknown coreference setting {key!r}; known: {', '.join(fields)}")
        default = getattr(DEFAULT_RULES, key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, tuple):
            value = tuple(value) if isinstance(value, list) else value
            ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
        else:
            ok = value in _CROSS_TYPES
        if not ok:
            want = {bool: "true or false", tuple: "a list of type names"}.get(type(default), " or ".join(_CROSS_TYPES))
            raise ValueError(f"coreference setting {key}: expected {want}, got {value!r}")
        changes[key] = value
    return dataclasses.replace(rules, **changes)


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


def _long_first(order: list[int], words: list[tuple[str, ...]]) -> list[int]:
    """Multi-word mentions before one-word ones (each group in reading order): a one-word name may then join a full
    name that comes later in the text."""
    return [i for i in order if len(words[i]) > 1] + [i for i in order if len(words[i]) <= 1]


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


# Demonyms whose spelling does not follow the place's name (the regular ones, "Canadian" ~ "Canada", are matched by
# their common stem, see _is_demonym_of): demonym -> normalised names of the place.
IRREGULAR_DEMONYMS: dict[str, tuple[str, ...]] = {
    "american": ("united states", "us", "usa", "america", "united states of america"),
    "british": ("united kingdom", "uk", "britain", "great britain"),
    "english": ("england",), "french": ("france",), "dutch": ("netherlands", "holland"), "polish": ("poland",),
    "finnish": ("finland",), "spanish": ("spain",), "danish": ("denmark",), "portuguese": ("portugal",),
    "welsh": ("wales",), "scottish": ("scotland",), "irish": ("ireland",), "swiss": ("switzerland",),
    "greek": ("greece",), "turkish": ("turkey",), "norwegian": ("norway",), "filipino": ("philippines",),
    "belgian": ("belgium",), "thai": ("thailand",), "soviet": ("soviet union",), "argentine": ("argentina",),
}
_DEMONYM_ENDINGS = ("n", "an", "ian", "nian", "ean", "ese", "ish", "i", "ic", "s")


def _is_demonym_of(adjective: str, place: str) -> bool:
    """Whether a one-word normalised `adjective` is the demonym of normalised `place` ("canadian", "canada")."""
    if place in IRREGULAR_DEMONYMS.get(adjective, ()):
        return True
    if " " in place or adjective == place:
        return False
    k = 0
    while k < min(len(adjective), len(place)) and adjective[k] == place[k]:
        k += 1
    ending, lost = adjective[k:], place[k:]
    if not ending:  # the adjective is the place's start: only "German" ~ "Germany"
        return k >= 4 and lost == "y"
    return k >= 4 and len(lost) <= 2 and ending in _DEMONYM_ENDINGS


def _link_demonyms(uf: _UnionFind, words: list[tuple[str, ...]], types: list[str], place_types: tuple[str, ...]) -> None:
    """A one-word place mention that names the people or things of another place mention joins its entity
    ("Canadian" -> "Canada", "American" -> "the United States"), unless two entities match."""
    n = len(words)
    roots = [uf.find(i) for i in range(n)]
    places: dict[str, set[int]] = {}
    for i in range(n):
        if types[i] in place_types:
            places.setdefault(" ".join(words[i]), set()).add(roots[i])
    links = []
    for i in range(n):
        if types[i] not in place_types or len(words[i]) != 1:
            continue
        adjective = words[i][0]
        targets = {r for name, rs in places.items() if _is_demonym_of(adjective, name) for r in rs}
        if (target := _only_other(targets, roots[i])) is not None:
            links.append((i, target))
    for i, j in links:
        uf.union(i, j)


_YEAR = re.compile(r"^[12]\d{3}$")


def _link_years(uf: _UnionFind, words: list[tuple[str, ...]], types: list[str], time_types: tuple[str, ...]) -> None:
    """A bare year ("1943") joins the one entity with a longer date ending in that year ("12 July 1943")."""
    n = len(words)
    roots = [uf.find(i) for i in range(n)]
    dates: dict[str, set[int]] = {}
    for i in range(n):
        if types[i] in time_types and len(words[i]) > 1 and _YEAR.match(words[i][-1]):
            dates.setdefault(words[i][-1], set()).add(roots[i])
    links = []
    for i in range(n):
        if types[i] in time_types and len(words[i]) == 1 and _YEAR.match(words[i][0]):
            if (target := _only_other(dates.get(words[i][0], set()), roots[i])) is not None:
                links.append((i, target))
    for i, j in links:
        uf.union(i, j)


def _link_partial_names(uf: _UnionFind, words: list[tuple[str, ...]], texts: list[str], types: list[str],
                        partial_types: tuple[str, ...]) -> None:
    """A capitalised mention whose words begin or end a longer mention of the same type joins its entity
    ("Vikings" -> "Minnesota Vikings", "US Airways" -> "US Airways Group"), unless two entities match."""
    n = len(words)
    roots = [uf.find(i) for i in range(n)]
    pieces: dict[tuple[str, tuple[str, ...]], set[int]] = {}
    for i in range(n):
        if types[i] in partial_types and len(words[i]) > 1:
            for k in range(1, len(words[i])):
                pieces.setdefault((types[i], words[i][:k]), set()).add(roots[i])
                pieces.setdefault((types[i], words[i][k:]), set()).add(roots[i])
    links = []
    for i in range(n):
        if types[i] in partial_types and texts[i][:1].isupper():
            if (target := _only_other(pieces.get((types[i], words[i]), set()), roots[i])) is not None:
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
        _link_person_names(uf, order if not rules.names_any_order else _long_first(order, words), words, types,
                           rules.person_types)
    if rules.acronyms:
        _link_acronyms(uf, texts, types, rules.acronym_types)
    if rules.demonyms:
        _link_demonyms(uf, words, types, rules.place_types)
    if rules.years:
        _link_years(uf, words, types, rules.time_types)
    if rules.partial_names:
        _link_partial_names(uf, words, texts, types, rules.partial_types)
    clusters: dict[int, list[int]] = {}
    for i in order:
        clusters.setdefault(uf.find(i), []).append(i)
    return list(clusters.values())  # dict order = order of each cluster's first mention


def entities_from_clusters(mentions: Sequence[MentionLike], clusters: Sequence[Sequence[int]],
                           sents: Sequence[Sequence[str]] | None = None) -> list[list[Mention]]:
    """Document entities (lists of Mention) from mentions and their clusters, for DocuNet's input."""
    return [[Mention(m.sent_id, m.start, m.end, m.type, mention_text(m, sents))
             for m in (mentions[i] for i in cluster)] for cluster in clusters]
