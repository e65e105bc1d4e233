"""Scores: DocRED's official metrics (P, R, F1, Ign F1) and binary P/R/F1 for CDR/GDA.

Ign F1 follows the official scorer: correct facts whose (mention name, mention name, relation)
appears in the training annotations are removed from the precision only; recall is unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

from .documents import Document, PredictedRelation, PredictedSpan

Fact = tuple[str, int, int, str]  # (title, head, tail, relation)


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    ign_f1: float
    num_predicted: int
    num_gold: int
    num_correct: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def f1_score(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def train_facts(train_docs: Iterable[Document]) -> set[tuple[str, str, str]]:
    """(head mention name, tail mention name, relation) for every mention pair of every training fact."""
    facts = set()
    for d in train_docs:
        for r in d.relations or []:
            for m1 in d.entities[r.head]:
                for m2 in d.entities[r.tail]:
                    facts.add((m1.name, m2.name, r.label))
    return facts


def docred_scores(predicted: Iterable[Fact], gold_docs: list[Document], facts_in_train: set | None = None) -> Scores:
    """Official DocRED scoring of de-duplicated predicted facts against labelled documents."""
    gold: set[Fact] = set()
    by_title: dict[str, Document] = {}
    for d in gold_docs:
        by_title[d.title] = d
        for r in d.relations or []:
            gold.add((d.title, r.head, r.tail, r.label))
    preds = sorted(set(predicted))
    correct = in_train = 0
    facts_in_train = facts_in_train or set()
    for fact in preds:
        if fact not in gold:
            continue
        correct += 1
        doc = by_title[fact[0]]
        if any((m1.name, m2.name, fact[3]) in facts_in_train for m1 in doc.entities[fact[1]] for m2 in doc.entities[fact[2]]):
            in_train += 1
    p = correct / len(preds) if preds else 0.0
    r = correct / len(gold) if gold else 0.0
    p_ign = (correct - in_train) / (len(preds) - in_train + 1e-5) if preds else 0.0
    return Scores(p, r, f1_score(p, r), f1_score(p_ign, r), len(preds), len(gold), correct)


def binary_scores(predicted: Iterable[Fact], gold_docs: list[Document]) -> Scores:
    """CDR/GDA: precision/recall/F1 of the positive class over the candidate pairs (Ign F1 = F1)."""
    gold = {(d.title, r.head, r.tail, r.label) for d in gold_docs for r in d.relations or []}
    candidates = {(d.title, h, t) for d in gold_docs for h, t in d.scored_pairs()}
    preds = {f for f in set(predicted) if f[:3] in candidates}
    correct = len(preds & gold)
    p = correct / len(preds) if preds else 0.0
    r = correct / len(gold) if gold else 0.0
    f = f1_score(p, r)
    return Scores(p, r, f, f, len(preds), len(gold), correct)


def iter_facts(docs: Sequence[Document], predictions: Sequence[list[PredictedRelation]]) -> Iterator[Fact]:
    """(title, head, tail, relation) for every predicted relation."""
    for d, rels in zip(docs, predictions):
        for r in rels:
            yield (d.title, r.head, r.tail, r.label)


def to_docred_submission(docs: Sequence[Document], predictions: Sequence[list[PredictedRelation]]) -> list[dict]:
    """The DocRED submission format: [{title, h_idx, t_idx, r}]."""
    return [{"title": t, "h_idx": h, "t_idx": tt, "r": r} for t, h, tt, r in iter_facts(docs, predictions)]


def score_facts(predicted: Iterable[Fact], gold_docs: Sequence[Document], facts_in_train: set | None = None) -> Scores:
    """The one scoring entry point for relation facts: binary P/R/F1 over the candidate pairs for
    CDR/GDA-style documents (which name their candidate pairs), official DocRED scores otherwise."""
    gold_docs = list(gold_docs)
    if any(d.candidate_pairs is not None for d in gold_docs):
        return binary_scores(predicted, gold_docs)
    return docred_scores(predicted, gold_docs, facts_in_train)


def score_relations(docs: Sequence[Document], predictions: Sequence[list[PredictedRelation]],
                    facts_in_train: set | None = None) -> Scores:
    """`score_facts` over per-document predicted relations."""
    return score_facts(iter_facts(docs, predictions), docs, facts_in_train)


def span_scores(docs: Sequence[Document], predictions: Sequence[list[PredictedSpan]]) -> Scores:
    """Entity mentions: exact-span micro P/R/F1 with types (`f1`) and without (`ign_f1` holds the untyped F1),
    every distinct gold mention span counted once (the original PL-Marker's and JEREX's measure)."""
    gold = {(i, m.sent_id, m.start, m.end, m.type) for i, d in enumerate(docs) for e in d.entities for m in e}
    pred = {(i, s.sent_id, s.start, s.end, s.type) for i, ps in enumerate(predictions) for s in ps}
    correct = len(pred & gold)
    untyped_gold, untyped_pred = {g[:4] for g in gold}, {x[:4] for x in pred}
    p = correct / len(pred) if pred else 0.0
    r = correct / len(gold) if gold else 0.0
    up = len(untyped_pred & untyped_gold) / len(untyped_pred) if untyped_pred else 0.0
    ur = len(untyped_pred & untyped_gold) / len(untyped_gold) if untyped_gold else 0.0
    return Scores(p, r, f1_score(p, r), f1_score(up, ur), len(pred), len(gold), correct)


def span_scores_by_type(docs: Sequence[Document], predictions: Sequence[list[PredictedSpan]]) -> dict[str, dict]:
    """Typed exact-span P/R/F1 per entity type."""
    gold = {(i, m.sent_id, m.start, m.end, m.type) for i, d in enumerate(docs) for e in d.entities for m in e}
    pred = {(i, s.sent_id, s.start, s.end, s.type) for i, ps in enumerate(predictions) for s in ps}
    out = {}
    for t in sorted({g[4] for g in gold} | {x[4] for x in pred}):
        g, q = {x for x in gold if x[4] == t}, {x for x in pred if x[4] == t}
        p = len(g & q) / len(q) if q else 0.0
        r = len(g & q) / len(g) if g else 0.0
        out[t] = {"precision": p, "recall": r, "f1": f1_score(p, r), "gold": len(g), "predicted": len(q)}
    return out
