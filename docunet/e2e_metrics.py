"""End-to-end scores with JEREX's definitions: mentions, entities, typed entities and relations.

A predicted item counts only when it matches a gold item exactly (micro P/R/F1 over all
documents, duplicates counted once):
- mention: its span (sentence, start, end); types ignored;
- entity: the exact set of its mention spans; typed entity: that set plus the entity type;
- relation (relaxed): head entity's span set, tail entity's span set and label;
- relation (strict): also both entity types.
An entity's type is the majority type of its mentions, ties going to the type of the earliest
tied mention (sentence, start, end). Documents are paired by position.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .documents import Document, Mention, PredictedSpan
from .metrics import f1_score

Span = tuple[int, int, int]


@dataclass(frozen=True)
class PRF:
    """Micro precision / recall / F1 with the counts behind them."""

    precision: float
    recall: float
    f1: float
    num_predicted: int
    num_gold: int
    num_correct: int

    @classmethod
    def of(cls, predicted: set, gold: set) -> PRF:
        correct = len(predicted & gold)
        p = correct / len(predicted) if predicted else 0.0
        r = correct / len(gold) if gold else 0.0
        return cls(p, r, f1_score(p, r), len(predicted), len(gold), correct)


@dataclass(frozen=True)
class E2EScores:
    mentions: PRF
    entities: PRF
    entities_typed: PRF
    relations: PRF
    relations_strict: PRF

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return asdict(self)


def entity_type(mentions: Sequence[Mention | PredictedSpan]) -> str:
    """The majority type of an entity's mentions; ties -> the type of the earliest tied mention."""
    if not mentions:
        return ""
    counts = Counter(m.type for m in mentions)
    top = max(counts.values())
    return min((m for m in mentions if counts[m.type] == top), key=lambda m: (m.sent_id, m.start, m.end)).type


def _spans(mentions: Iterable[Mention]) -> frozenset[Span]:
    return frozenset((m.sent_id, m.start, m.end) for m in mentions)


def _relation_triple(rel: Any) -> tuple[int, int, str]:
    """(head, tail, label) of a Relation, PredictedRelation or plain tuple."""
    if isinstance(rel, (tuple, list)):
        return int(rel[0]), int(rel[1]), str(rel[2])
    return rel.head, rel.tail, rel.label


def _items(doc_idx: int, doc: Document) -> dict[str, set]:
    entities = [_spans(e) for e in doc.entities]
    types = [entity_type(e) for e in doc.entities]
    out: dict[str, set] = {k: set() for k in ("mentions", "entities", "entities_typed", "relations", "relations_strict")}
    out["mentions"] = {(doc_idx, *span) for e in entities for span in e}
    out["entities"] = {(doc_idx, e) for e in entities}
    out["entities_typed"] = {(doc_idx, e, t) for e, t in zip(entities, types)}
    for rel in doc.relations or []:
        h, t, label = _relation_triple(rel)
        out["relations"].add((doc_idx, entities[h], entities[t], label))
        out["relations_strict"].add((doc_idx, entities[h], types[h], entities[t], types[t], label))
    return out


def e2e_scores(gold_docs: Sequence[Document], predicted_docs: Sequence[Document]) -> E2EScores:
    """JEREX-style end-to-end scores of predicted documents (entities + relations between entity
    indices) against gold documents, paired by position."""
    if len(gold_docs) != len(predicted_docs):
        raise ValueError(f"{len(predicted_docs)} predicted documents for {len(gold_docs)} gold documents")
    gold: dict[str, set] = {}
    pred: dict[str, set] = {}
    for i, (g, p) in enumerate(zip(gold_docs, predicted_docs)):
        for key, items in _items(i, g).items():
            gold.setdefault(key, set()).update(items)
        for key, items in _items(i, p).items():
            pred.setdefault(key, set()).update(items)
    keys = ("mentions", "entities", "entities_typed", "relations", "relations_strict")
    return E2EScores(*(PRF.of(pred.get(k, set()), gold.get(k, set())) for k in keys))
