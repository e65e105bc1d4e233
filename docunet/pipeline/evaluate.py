"""End-to-end evaluation of a pipeline bundle: gold DocRED documents are turned into text (words joined by
single spaces), run through the pipeline as text, and scored against the gold annotations with JEREX's
definitions (docunet.e2e_metrics); beside it, the relation model's scores with the gold entities."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ..documents import Document, Mention, Relation
from ..e2e_metrics import e2e_scores
from ..metrics import score_relations


def predicted_document(gold: Document, entities: Sequence[Any], relations: Sequence[Any]) -> Document:
    """A pipeline's output in the gold document's words: a mention counts only where its characters start and end
    on gold word boundaries of one sentence; any other mention keeps a span that matches nothing (sentence -1, its
    character offsets), so it is a false positive rather than dropped."""
    starts, ends = {}, {}
    for s, row in enumerate(gold.char_offsets()):
        for w, (a, b) in enumerate(row):
            starts[a], ends[b] = (s, w), (s, w)
    mapped = []
    for e in entities:
        ms = []
        for m in e.mentions:
            a, b = starts.get(m.start_char), ends.get(m.end_char)
            if a is not None and b is not None and a[0] == b[0] and a[1] <= b[1]:
                ms.append(Mention(a[0], a[1], b[1] + 1, m.type, m.text))
            else:
                ms.append(Mention(-1, m.start_char, m.end_char, m.type, m.text))
        mapped.append(ms)
    return dataclasses.replace(gold, entities=mapped, relations=[Relation(r.head, r.tail, r.label) for r in relations])


def evaluate_pipeline(pipeline, gold_docs: Sequence[Document], batch_size: int = 8) -> dict:
    """JEREX-style end-to-end scores of `pipeline` (runtime.pipeline.Pipeline) on gold documents given as text, the
    relation model's scores with the gold entities, and the ratio of strict end-to-end to gold-entity relation F1."""
    texts = [{"text": d.surface(), "title": d.title} for d in gold_docs]
    predicted, failed = [], []
    for d, p in zip(gold_docs, pipeline.predict(texts, batch_size=batch_size)):
        if p.error is not None:
            failed.append(p.error)
            predicted.append(dataclasses.replace(d, entities=[], relations=[]))
        else:
            predicted.append(predicted_document(d, p.entities or [], p.relations))
    e2e = e2e_scores(gold_docs, predicted)
    given = [p for p in pipeline.relations.predict(gold_docs, batch_size=batch_size)]
    with_gold = [dataclasses.replace(d, relations=[Relation(r.head, r.tail, r.label) for r in p.relations]) for d, p in zip(gold_docs, given)]
    gold_e2e = e2e_scores(gold_docs, with_gold)
    docred = score_relations(gold_docs, [p.relations for p in given])
    strict, reference = e2e.relations_strict.f1, gold_e2e.relations_strict.f1
    return {"documents": len(gold_docs), "failed": len(failed), "first_failure": failed[0] if failed else None,
            "end_to_end": e2e.as_dict(), "gold_entities": {"relations_strict": dataclasses.asdict(gold_e2e.relations_strict),
                                                           "docred": docred.as_dict()},
            "strict_relation_ratio": strict / reference if reference else None}
