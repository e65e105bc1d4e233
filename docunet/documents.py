"""The one document type every reader produces and every later stage consumes.

A document is a title, sentences of words, entities (each a non-empty list of mentions with a
sentence id, a word span inside that sentence and a type) and, for labelled data, relations
between entity indices. CDR/GDA-style data also name the candidate pairs that are scored.
Validation errors name where the document came from (file, line or index, title) and the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


class DataError(ValueError):
    """A document or file that cannot be used, with a message that says where and why."""


@dataclass(frozen=True)
class Mention:
    sent_id: int
    start: int  # first word, inclusive
    end: int  # last word, exclusive
    type: str
    name: str = ""


@dataclass(frozen=True)
class Relation:
    head: int
    tail: int
    label: str
    evidence: tuple[int, ...] = ()


@dataclass(frozen=True)
class PredictedRelation:
    """A predicted relation between two entity indices of a document.

    `score` is probability-like, in (0, 1): the model's calibrated estimate that the relation holds
    (Platt scaling of `margin` fitted on the dev set at training time and stored in config.json;
    sigmoid(margin) for models without a calibration), so users can threshold it. `margin` is the
    raw decision value: the relation's logit minus the model's decision bar (0 for the balanced
    loss, the no-relation logit for the adaptive loss); the relation is predicted when it exceeds
    the decoding threshold (0 unless overridden) and is among the pair's top-k labels.
    `relation` is the readable relation name, `head_name` / `tail_name` the entities' first mentions."""

    head: int
    tail: int
    label: str
    score: float
    margin: float = 0.0
    relation: str = ""
    head_name: str = ""
    tail_name: str = ""


@dataclass(frozen=True)
class PredictedSpan:
    """A predicted entity mention: sentence, word span [start, end), type and the model's probability."""

    sent_id: int
    start: int
    end: int
    type: str
    score: float | None  # None for a mention that was given (gold entities), not predicted
    text: str = ""
    start_char: int = -1  # character [start_char, end_char) in the document's text (Document.char_offsets); -1: not set
    end_char: int = -1


@dataclass(frozen=True)
class PredictedEntity:
    """An entity found in text: its mentions (coreference clusters of predicted spans), its type (the majority of
    its mentions') and its name (its first mention's text)."""

    type: str
    name: str
    mentions: tuple[PredictedSpan, ...]


@dataclass
class Document:
    title: str
    sents: list[list[str]]
    entities: list[list[Mention]]
    relations: list[Relation] | None = None  # None: unlabelled (inference input)
    candidate_pairs: list[tuple[int, int]] | None = None  # None: every ordered pair h != t
    source: str = ""  # "file:line" or "file#index", for messages
    # Raw-text input (docunet.text.document_from_text): the text the words came from and each word's
    # character [start, end) in it, same shape as `sents`; None for documents read from word lists.
    text: str | None = None
    word_offsets: list[list[tuple[int, int]]] | None = None

    def char_offsets(self) -> list[list[tuple[int, int]]]:
        """Each word's character [start, end): in `text` for documents made from text, else in `surface()`."""
        if self.word_offsets is not None:
            return self.word_offsets
        out, pos = [], 0
        for sent in self.sents:
            row = []
            for w in sent:
                row.append((pos, pos + len(w)))
                pos += len(w) + 1
            out.append(row)
        return out

    def char_span(self, sent_id: int, start: int, end: int, offsets: list[list[tuple[int, int]]] | None = None) -> tuple[int, int]:
        """The character [start, end) of words [start, end) of a sentence (see `char_offsets`; pass them when
        calling for many spans)."""
        offsets = offsets if offsets is not None else self.char_offsets()
        return offsets[sent_id][start][0], offsets[sent_id][end - 1][1]

    def surface(self) -> str:
        """The text the character offsets point into: `text`, or the words joined by single spaces."""
        return self.text if self.text is not None else " ".join(w for s in self.sents for w in s)

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_words(self) -> int:
        return sum(len(s) for s in self.sents)

    def entity_names(self, idx: int) -> list[str]:
        return [m.name for m in self.entities[idx]]

    def scored_pairs(self) -> list[tuple[int, int]]:
        """The ordered pairs a model predicts for: the candidates, or all h != t."""
        if self.candidate_pairs is not None:
            return list(self.candidate_pairs)
        n = self.num_entities
        return [(h, t) for h in range(n) for t in range(n) if h != t]


def data_error(source: str, problem: str, field_name: str | None = None, title: str | None = None) -> DataError:
    """The one form of every data error: `file:line: what is wrong (field F; title 'T')`."""
    context = "; ".join(x for x in (f"field {field_name}" if field_name else "", f"title {title!r}" if title else "") if x)
    return DataError(f"{source}: {problem}" + (f" ({context})" if context else ""))


def _fail(source: str, title: str | None, field_name: str, problem: str) -> DataError:
    return data_error(source, problem, field_name, title)


def _require(obj: dict, key: str, kind: type | tuple[type, ...], source: str, title: str | None) -> Any:
    if key not in obj:
        raise _fail(source, title, key, "required field is missing")
    value = obj[key]
    if not isinstance(value, kind):
        raise _fail(source, title, key, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def json_kind(obj: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}.get(
        type(obj), type(obj).__name__)


def document_from_docred(
    obj: Any,
    source: str,
    relation_vocab: Sequence[str] | None = None,
    require_entities: int = 0,
) -> Document:
    """Validate one DocRED-schema dict (title, sents, vertexSet, optional labels) into a Document.

    `relation_vocab` (when given) is checked against every label; `require_entities` is the
    minimum entity count (the runtime needs 2 to have a pair).
    """
    if not isinstance(obj, dict):
        raise data_error(source, f"expected a JSON object (a document with title, sents, vertexSet), got {json_kind(obj)}")
    title = obj.get("title") if isinstance(obj.get("title"), str) else None
    title = _require(obj, "title", str, source, title)
    sents = _require(obj, "sents", list, source, title)
    if not sents:
        raise _fail(source, title, "sents", "empty document (no sentences)")
    for i, sent in enumerate(sents):
        if not isinstance(sent, list) or not all(isinstance(w, str) for w in sent):
            raise _fail(source, title, f"sents[{i}]", "expected a list of word strings")
    if sum(len(s) for s in sents) == 0:
        raise _fail(source, title, "sents", "empty document (no words)")
    vertex_set = _require(obj, "vertexSet", list, source, title)
    if len(vertex_set) < require_entities:
        raise _fail(source, title, "vertexSet", f"has {len(vertex_set)} entities, at least {require_entities} are needed for a relation")
    entities: list[list[Mention]] = []
    for e, mentions in enumerate(vertex_set):
        if not isinstance(mentions, list) or not mentions:
            raise _fail(source, title, f"vertexSet[{e}]", "entity without mentions")
        ms = []
        for k, m in enumerate(mentions):
            f = f"vertexSet[{e}][{k}]"
            if not isinstance(m, dict):
                raise _fail(source, title, f, "expected a mention object")
            for key in ("sent_id", "pos"):
                if key not in m:
                    raise _fail(source, title, f"{f}.{key}", "required field is missing")
            sid, pos = m["sent_id"], m["pos"]
            if not isinstance(sid, int) or not 0 <= sid < len(sents):
                raise _fail(source, title, f"{f}.sent_id", f"{sid!r} is not a sentence index (document has {len(sents)} sentences)")
            if not (isinstance(pos, list) and len(pos) == 2 and all(isinstance(p, int) for p in pos)):
                raise _fail(source, title, f"{f}.pos", f"expected [start, end] word indices, got {pos!r}")
            start, end = pos
            if not 0 <= start < end <= len(sents[sid]):
                raise _fail(source, title, f"{f}.pos", f"span {pos} is outside sentence {sid} ({len(sents[sid])} words)")
            etype = m.get("type", "")
            if not isinstance(etype, str):
                raise _fail(source, title, f"{f}.type", "expected a string")
            name = m.get("name")
            if not isinstance(name, str):
                name = " ".join(sents[sid][start:end])
            ms.append(Mention(sid, start, end, etype, name))
        entities.append(ms)
    relations = None
    if "labels" in obj and obj["labels"] is not None:
        labels = obj["labels"]
        if not isinstance(labels, list):
            raise _fail(source, title, "labels", "expected a list")
        relations = []
        for i, lab in enumerate(labels):
            f = f"labels[{i}]"
            if not isinstance(lab, dict):
                raise _fail(source, title, f, "expected an object with h, t, r")
            for key in ("h", "t", "r"):
                if key not in lab:
                    raise _fail(source, title, f"{f}.{key}", "required field is missing")
            h, t, r = lab["h"], lab["t"], lab["r"]
            for key, v in (("h", h), ("t", t)):
                if not isinstance(v, int) or not 0 <= v < len(entities):
                    raise _fail(source, title, f"{f}.{key}", f"{v!r} is not an entity index (document has {len(entities)} entities)")
            if relation_vocab is not None and r not in relation_vocab:
                raise _fail(source, title, f"{f}.r", f"relation {r!r} is not in the relation vocabulary ({len(relation_vocab)} labels)")
            evidence = lab.get("evidence") or []
            relations.append(Relation(h, t, str(r), tuple(int(x) for x in evidence if isinstance(x, int))))
    return Document(title=title, sents=sents, entities=entities, relations=relations, source=source)


def document_from_dygie(obj: dict, source: str) -> Document:
    """One DyGIE-format document (SciERC): `sentences` (lists of words), `ner` (per sentence, [start, end, type]
    with document-level inclusive word offsets), optional `relations` (per sentence, [s1, e1, s2, e2, label]) and
    `doc_key`. Every distinct span is an entity of its own (DyGIE has mentions, not entities)."""
    title = str(obj.get("doc_key", source))
    sents = _require(obj, "sentences", list, source, title)
    if not sents or not all(isinstance(s, list) and s and all(isinstance(w, str) for w in s) for s in sents):
        raise _fail(source, title, "sentences", "expected non-empty lists of word strings")
    ner = _require(obj, "ner", list, source, title)
    if len(ner) != len(sents):
        raise _fail(source, title, "ner", f"has {len(ner)} sentence lists for {len(sents)} sentences")
    offsets = [0]
    for s in sents:
        offsets.append(offsets[-1] + len(s))
    index: dict[tuple[int, int], int] = {}
    entities: list[list[Mention]] = []
    for sid, spans in enumerate(ner):
        for k, span in enumerate(spans if isinstance(spans, list) else [None]):
            f = f"ner[{sid}][{k}]"
            if not (isinstance(span, list) and len(span) == 3 and isinstance(span[0], int) and isinstance(span[1], int)
                    and isinstance(span[2], str)):
                raise _fail(source, title, f, f"expected [start, end, type], got {span!r}")
            start, end = span[0] - offsets[sid], span[1] - offsets[sid] + 1
            if not 0 <= start < end <= len(sents[sid]):
                raise _fail(source, title, f, f"span {span[:2]} is outside sentence {sid} (words {offsets[sid]}-{offsets[sid + 1] - 1})")
            key = (span[0], span[1])
            if key in index:
                continue
            index[key] = len(entities)
            entities.append([Mention(sid, start, end, span[2], " ".join(sents[sid][start:end]))])
    relations: list[Relation] = []
    for sid, rels in enumerate(obj.get("relations") or []):
        for k, rel in enumerate(rels or []):
            f = f"relations[{sid}][{k}]"
            if not (isinstance(rel, list) and len(rel) == 5):
                raise _fail(source, title, f, f"expected [s1, e1, s2, e2, label], got {rel!r}")
            h, t = index.get((rel[0], rel[1])), index.get((rel[2], rel[3]))
            if h is None or t is None:
                raise _fail(source, title, f, f"argument {rel[:2] if h is None else rel[2:4]} is not an entity span of the document")
            relations.append(Relation(h, t, str(rel[4])))
    return Document(title=title, sents=sents, entities=entities, relations=relations, source=source)


def is_dygie(obj: Any) -> bool:
    return isinstance(obj, dict) and "sentences" in obj and "ner" in obj and "vertexSet" not in obj
