"""Text in, entities and relations out: an entity model (PL-Marker NER), coreference (rules) and a relation
model (DocuNet, or PL-Marker's sentence-level one), each served by its own Runtime, behind the Runtime interface
(`predict`, `name`, `notes`).

Input is taken in chunks: the chunk's text items go through the entity runtime (errors stay in place),
each document's mentions are clustered into entities (a sentence-level relation model, `ModelFamily.sentence_level`:
every mention is an entity of its own, no coreference), documents with enough entities go through the relation
runtime, and one Prediction per item comes out, in input order. DocRED documents that bring their own entities
(`vertexSet`) and DyGIE / SciERC lines with entity spans (`ner`) skip the entity step."""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Iterable, Iterator

from ..coref.rules import CorefRules, cluster_mentions, with_rule_settings
from ..documents import Document, Mention, PredictedEntity, PredictedSpan, is_dygie
from ..e2e_metrics import entity_type
from ..pipeline.bundle import read_bundle
from ..timing import NULL_TIMER
from .prediction import Prediction

CHUNK_DOCS = 64  # items per chunk: both stages run over a chunk before its predictions are yielded


def _has_entities(item: Any) -> bool:
    """Whether an item brings its own entities: a Document with entities, a DocRED document, or a DyGIE line with a
    span in `ner` (one whose `ner` is no list too: the relation runtime then reports what is wrong with it)."""
    if isinstance(item, Document):
        return bool(item.entities)
    if is_dygie(item):
        return not isinstance(item["ner"], list) or any(item["ner"])
    return isinstance(item, dict) and "vertexSet" in item


def entities_of(doc: Document, mentions: list[PredictedSpan], rules: CorefRules) -> list[PredictedEntity]:
    """Coreference: the document's predicted mentions clustered into entities (type: the majority of its mentions',
    e2e_metrics.entity_type; name: its first mention's text)."""
    entities = []
    for cluster in cluster_mentions(mentions, rules, doc.sents):
        ms = tuple(mentions[i] for i in cluster)
        entities.append(PredictedEntity(entity_type(ms), ms[0].text, ms))
    return entities


def mention_entities(mentions: list[PredictedSpan]) -> list[PredictedEntity]:
    """No coreference (a sentence-level relation model): every mention is an entity of its own, named by its text, in
    reading order."""
    return [PredictedEntity(m.type, m.text, (m,)) for m in sorted(mentions, key=lambda m: (m.sent_id, m.start, m.end))]


def given_entities(doc: Document) -> list[PredictedEntity]:
    """A document's own entities (DocRED input) in the output's form: mentions with character offsets, no score."""
    offsets, surface = doc.char_offsets(), doc.surface()
    out = []
    for mentions in doc.entities:
        spans = []
        for m in mentions:
            a, b = doc.char_span(m.sent_id, m.start, m.end, offsets)
            spans.append(PredictedSpan(m.sent_id, m.start, m.end, m.type, None, surface[a:b], a, b))
        out.append(PredictedEntity(mentions[0].type, mentions[0].name or spans[0].text, tuple(spans)))
    return out


def with_entities(doc: Document, entities: list[PredictedEntity]) -> Document:
    """The document the relation model reads: the entities as DocRED mentions (each mention's own type)."""
    return dataclasses.replace(doc, entities=[[Mention(s.sent_id, s.start, s.end, s.type, s.text) for s in e.mentions]
                                              for e in entities])


class Pipeline:
    def __init__(self, ner, relations, coref: CorefRules | None, chunk_docs: int = CHUNK_DOCS):
        """`coref` None, or a sentence-level relation model: no coreference, every mention an entity of its own."""
        self.ner, self.relations, self.coref, self.chunk_docs = ner, relations, coref, chunk_docs
        self.config = relations.config  # relation names, as a relation model's Runtime gives them
        self.sentence_level = coref is None or relations.family.sentence_level

    @classmethod
    def load(cls, bundle_dir, runtime_cls, **options: Any) -> "Pipeline":
        """Both models of a bundle (docunet.pipeline.bundle) with the same serving options; `grid_fit` and
        `settings` apply to the relation model, `ner_settings` (e.g. {"prune_ratio": 0.3}) to the entity model, over
        the bundle's own entity-model settings (pipeline.json, `settings.ner`), and `coref_settings` (e.g.
        {"cross_type": "none"}) to the bundle's coreference rules (a ValueError names an unknown or badly typed one)."""
        bundle = read_bundle(bundle_dir)
        ner_settings = {**bundle.ner_settings, **(options.pop("ner_settings", None) or {})} or None
        coref = bundle.coref
        if coref_settings := options.pop("coref_settings", None):
            if coref is None:
                raise ValueError(f"{bundle_dir}: this bundle has no coreference step (a sentence-level relation model); "
                                 "coref.* settings do not apply")
            coref = with_rule_settings(coref, coref_settings)
        ner_options = {k: v for k, v in options.items() if k not in ("grid_fit", "settings")}
        return cls(runtime_cls.load(bundle.ner, settings=ner_settings, **ner_options), runtime_cls.load(bundle.relations, **options),
                   coref)

    @property
    def name(self) -> str:
        return f"pipeline[{self.ner.name} + {self.relations.name}]"

    @property
    def on_note(self) -> Callable[[str], None]:
        return self.relations.on_note

    @on_note.setter
    def on_note(self, fn: Callable[[str], None]) -> None:
        self.ner.on_note = self.relations.on_note = fn

    @property
    def notes(self) -> dict[str, int]:
        return {**self.ner.notes, **self.relations.notes}

    def predict(self, documents: Iterable[Any], batch_size: int = 8, threshold: float | None = None, top_k: int | None = None,
                timer=NULL_TIMER, on_batch: Callable[[int], None] | None = None) -> Iterator[Prediction]:
        """One Prediction per item, in input order, with `entities` (relations' h / t index them) and `relations`."""
        numbered = enumerate(documents)
        for chunk in iter(lambda: list(itertools.islice(numbered, self.chunk_docs)), []):
            yield from self._chunk(chunk, batch_size, threshold, top_k, timer, on_batch)

    def _chunk(self, chunk, batch_size, threshold, top_k, timer, on_batch) -> list[Prediction]:
        out: list[Prediction | None] = [None] * len(chunk)
        docs: list[tuple[int, Document | dict, list[PredictedEntity]]] = []
        ner_warnings: dict[int, str] = {}  # the entity model's warning of an item (text without capitals...)
        text_items = [k for k, (_, item) in enumerate(chunk) if not _has_entities(item)]
        for k, p in zip(text_items, self.ner.predict([chunk[k][1] for k in text_items], batch_size=batch_size, timer=timer)):
            if p.error is not None:
                out[k] = dataclasses.replace(p, index=chunk[k][0])
                continue
            if p.warning:
                ner_warnings[k] = p.warning
            with timer("coref"):
                entities = mention_entities(p.mentions) if self.sentence_level else entities_of(p.document, p.mentions, self.coref)
            docs.append((k, with_entities(p.document, entities), entities))
        docs += [(k, item, []) for k, (_, item) in enumerate(chunk) if _has_entities(item)]  # DocRED input keeps its entities
        family = self.relations.family
        related = []
        for k, d, e in docs:
            if isinstance(d, dict):  # a DocRED document: the relation runtime validates it
                related.append((k, d, e))
            elif len(d.entities) < family.min_entities:  # one entity or none: no pair, no relations
                out[k] = Prediction(chunk[k][0], d.title, [], None, d, entities=e or given_entities(d))
            elif problem := family.size_problem(d):  # the entities, and why there are no relations
                out[k] = Prediction(chunk[k][0], d.title, [], None, d, entities=e or given_entities(d), warning=f"no relations: {problem}")
            else:
                related.append((k, d, e))
        preds = self.relations.predict([d for _, d, _ in related], batch_size=batch_size, threshold=threshold, top_k=top_k,
                                       timer=timer)
        for (k, _, e), p in zip(related, preds):
            if p.error is not None:
                out[k] = dataclasses.replace(p, index=chunk[k][0])
            else:
                out[k] = dataclasses.replace(p, index=chunk[k][0], entities=e or given_entities(p.document))
        for k, warning in ner_warnings.items():
            p = out[k]
            if p is not None and p.error is None:
                out[k] = dataclasses.replace(p, warning="; ".join(w for w in (warning, p.warning) if w))
        if on_batch is not None:  # progress: every item that reached a model
            on_batch(sum(1 for p in out if p is not None and p.document is not None))
        return out  # type: ignore[return-value]
