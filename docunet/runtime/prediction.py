"""What the runtime gives back per input item, and what it takes for an unparseable one."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..documents import Document, PredictedEntity, PredictedRelation, PredictedSpan


@dataclass
class BadInput:
    """An input that could not even be parsed (not UTF-8, not JSON): passed through as an error."""

    source: str
    error: str


@dataclass
class Prediction:
    index: int
    title: str | None
    relations: list[PredictedRelation] = field(default_factory=list)
    error: str | None = None
    document: Document | None = None
    mentions: list[PredictedSpan] = field(default_factory=list)  # entity mention models (PL-Marker NER)
    entities: list[PredictedEntity] | None = None  # pipelines: the entities found (relations' h / t index them)
    warning: str | None = None  # a result that is incomplete but not wrong (e.g. entities found, too many for relations)

    @property
    def ok(self) -> bool:
        return self.error is None
