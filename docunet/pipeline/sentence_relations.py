"""Sentence-level relation models (PL-Marker's, `ModelFamily.sentence_level`) fed by an entity model, and their
evaluation as the original reports it.

Such a model relates mentions of one sentence and treats every mention as an entity of its own, so an entity
model's mentions feed it directly: no coreference step. `evaluate_sentence_relations` scores it on gold documents
with the gold entities and, given an entity model, with the entities that model predicts on the same words (the
original's --use_ner_results setting): Ent, Rel and Rel+ P/R/F1 (the family's `report`). The models are Runtimes
(or anything with the same `predict`, `family`, `config` and `name`)."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ..documents import Document, Mention, PredictedSpan


def mention_document(doc: Document, mentions: Sequence[PredictedSpan]) -> Document:
    """`doc`'s words with each mention as an entity of its own (a mention's text is its entity's name), unlabelled."""
    return dataclasses.replace(doc, entities=[[Mention(m.sent_id, m.start, m.end, m.type, m.text)] for m in mentions],
                               relations=None)


def predicted_entity_documents(ner: Any, docs: Sequence[Document], batch_size: int = 8) -> tuple[list[Document], list[str]]:
    """The documents' words with the entity model's mentions as their entities (given the words only: no gold entity
    reaches the model), and the errors of documents it failed on (those keep no entities)."""
    bare = [dataclasses.replace(d, entities=[], relations=None) for d in docs]
    out, failed = [], []
    for d, p in zip(bare, ner.predict(bare, batch_size=batch_size)):
        if p.error is not None:
            failed.append(p.error)
        out.append(mention_document(d, p.mentions if p.error is None else []))
    return out, failed


def predict_relations(relations: Any, docs: Sequence[Document], batch_size: int = 8,
                      threshold: float | None = None) -> tuple[list[list], list[str]]:
    """The relation model's predictions for each document (none for a document it failed on) and the errors."""
    preds, failed = [], []
    for p in relations.predict(list(docs), batch_size=batch_size, threshold=threshold):
        if p.error is not None:
            failed.append(p.error)
        preds.append(p.relations if p.error is None else [])
    return preds, failed


def _report(relations: Any, gold: Sequence[Document], preds: list[list], entity_docs: Sequence[Document] | None) -> dict:
    report = relations.family.report(relations.config, gold, preds, entity_docs)
    if report is None:
        raise ValueError(f"{relations.family.model_type} models have no relation report (Ent / Rel / Rel+)")
    return report


def evaluate_sentence_relations(relations: Any, gold_docs: Sequence[Document], ner: Any | None = None, batch_size: int = 8,
                                threshold: float | None = None) -> dict:
    """Ent / Rel / Rel+ P/R/F1 of a sentence-level relation model on labelled documents: with the entities `ner`
    predicts when it is given (the headline numbers, "entities": "predicted"; the gold-entity numbers beside them
    under "gold_entities"), else with the gold entities (Ent F1 is then 1)."""
    if not relations.family.sentence_level:
        raise ValueError(f"{relations.family.model_type} models are not sentence-level relation models: their entities "
                         "come from coreference (evaluate a pipeline bundle instead)")
    if ner is not None and ner.family.output != "mentions":
        raise ValueError(f"the entity model must find mentions ({ner.family.model_type} models give {ner.family.output})")
    gold_docs = list(gold_docs)
    given = [dataclasses.replace(d, relations=None) for d in gold_docs]
    gold_preds, gold_failed = predict_relations(relations, given, batch_size, threshold)
    gold_report = _report(relations, gold_docs, gold_preds, None)
    out: dict = {"documents": len(gold_docs), "relation_model": relations.name}
    if ner is None:
        return {**out, "entities": "gold", **gold_report, "failed": len(gold_failed),
                "first_failure": gold_failed[0] if gold_failed else None}
    entity_docs, ner_failed = predicted_entity_documents(ner, gold_docs, batch_size)
    preds, failed = predict_relations(relations, entity_docs, batch_size, threshold)
    failed = ner_failed + failed + gold_failed
    return {**out, "entity_model": ner.name, "entities": "predicted", **_report(relations, gold_docs, preds, entity_docs),
            "gold_entities": {k: v for k, v in gold_report.items() if k != "ent"}, "failed": len(failed),
            "first_failure": failed[0] if failed else None}
