"""PLMarkerREConfig: everything a PL-Marker relation model needs to be rebuilt and served (`config.json`),
and its label space (none + symmetric + asymmetric + inverse of asymmetric, as the original)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config_file import ConfigFile
from .config import MarkerEncoderSettings

NONE_LABEL = "none"
INVERSE_SUFFIX = "^-1"  # the name of the inverse class of an asymmetric relation: "USED-FOR^-1"
# relations known to be symmetric (SciERC: CONJUNCTION, COMPARE; ACE04/05: PER-SOC), the original's sym_labels
KNOWN_SYMMETRIC = ("CONJUNCTION", "COMPARE", "PER-SOC")


def default_symmetric(relations: list[str]) -> list[str]:
    """The relations of `relations` that the original treats as symmetric."""
    return [r for r in relations if r in KNOWN_SYMMETRIC]


class LabelSpace:
    """Classes of an ordered (subject, object) pair: 0 = none, then the symmetric relations, the asymmetric ones
    and the inverse of each asymmetric one (the pair read from object to subject). A relation r(a, b) labels
    (a, b) with r and (b, a) with r itself when symmetric, else with r's inverse class."""

    def __init__(self, relations: list[str], symmetric: list[str]):
        unknown = sorted(set(symmetric) - set(relations))
        if unknown:
            raise ValueError(f"symmetric relations {unknown} are not among the relations {relations}")
        self.symmetric = [r for r in relations if r in set(symmetric)]
        self.asymmetric = [r for r in relations if r not in set(symmetric)]
        base = [NONE_LABEL] + self.symmetric + self.asymmetric
        self.names = base + [r + INVERSE_SUFFIX for r in self.asymmetric]
        self.num_base = len(base)  # classes that are a relation read forwards (none included)
        self.num_sym = 1 + len(self.symmetric)  # classes that are their own inverse (none included)
        self.index = {name: i for i, name in enumerate(base)}

    def __len__(self) -> int:
        return len(self.names)

    def inverse(self, k: int) -> int:
        """The class of the reversed pair: itself for none and symmetric classes, forward <-> inverse otherwise."""
        if k < self.num_sym:
            return k
        shift = self.num_base - self.num_sym
        return k + shift if k < self.num_base else k - shift

    @property
    def permutation(self) -> list[int]:
        """perm[k] = inverse(k): `scores_of_reversed_pair[perm]` reads the reversed pair's scores in this direction."""
        return [self.inverse(k) for k in range(len(self))]

    def labels_of(self, relation: str) -> tuple[int, int]:
        """(class of the pair as given, class of the reversed pair)."""
        k = self.index[relation]
        return k, self.inverse(k)

    def relation_of(self, k: int) -> tuple[str, bool]:
        """(relation name, whether the pair must be reversed to read it forwards) of class k > 0."""
        if k <= 0:
            raise ValueError("class 0 is no relation")
        flipped = k >= self.num_base
        return self.names[self.inverse(k) if flipped else k], flipped


@dataclass
class PLMarkerREConfig(MarkerEncoderSettings, ConfigFile):
    model_type: ClassVar[str] = "plmarker-re"
    serving_settings: ClassVar[tuple[str, ...]] = ("use_ner_types", "original_ranking", "dense_pass")  # Runtime(settings=...) may change
    relations: list[str] = field(default_factory=list)  # the relation names (no "none")
    symmetric: list[str] = field(default_factory=list)  # the symmetric ones among them
    entity_types: list[str] = field(default_factory=list)  # the auxiliary entity-type head: label 0 "none", t + 1 = type t
    encoder_name: str = ""
    encoder_config: dict[str, Any] = field(default_factory=dict)  # the transformers config, to rebuild offline
    max_seq_length: int = 256  # text window of an instance, special tokens and the two solid markers included (SciERC)
    max_pair_length: int = 16  # K: objects (levitated marker pairs) packed into one instance (16 SciERC, 32 ACE05)
    type_markers: bool = False  # the original's --use_typemarker: subject and object markers specific to the entity type
    # training: one more instance per sentence whose subject is a dummy (its solid markers after the text, every
    # object labelled none), as the original, so the entity-type head also learns on sentences' spans without a subject
    dummy_subject: bool = True
    nil_weight: float = 1.0  # the original's alpha: class weight of "none" in the relation loss
    # decoding: entity types of the arguments from the input entities (the original's --use_ner_results, used for
    # SciERC); False: from the auxiliary head (an argument it calls "none" drops the relation)
    use_ner_types: bool = True
    # decoding: rank a relation read from an inverse class by its forward class's summed score, as the original does
    # (its greedy overlap removal then keeps the wrong one of two flipped duplicates); False: by the chosen class's
    original_ranking: bool = True
    # the original's dense packed pass (text with the subject's solid markers and K object marker pairs in one [T, T]
    # sequence per instance); False: the subject's text once, all its objects against the cached states (same logits)
    dense_pass: bool = False
    dropout: float = 0.1
    # [solid start, solid end, levitated start, levitated end], then with type_markers the same four per entity type
    marker_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_seq_length < 8 or self.max_pair_length < 1:
            raise ValueError("max_seq_length must be >= 8 and max_pair_length >= 1")
        for name, values in (("relations", self.relations), ("entity_types", self.entity_types), ("symmetric", self.symmetric)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicates: {values}")
        if NONE_LABEL in self.relations or any(r.endswith(INVERSE_SUFFIX) for r in self.relations):
            raise ValueError(f"relation names may not be {NONE_LABEL!r} or end with {INVERSE_SUFFIX!r}")
        LabelSpace(self.relations, self.symmetric)  # checks symmetric is a subset

    @property
    def labels(self) -> LabelSpace:
        return LabelSpace(self.relations, self.symmetric)

    @property
    def num_labels(self) -> int:
        return 1 + len(self.relations) + len(self.relations) - len(self.symmetric)

    @property
    def num_entity_labels(self) -> int:
        return len(self.entity_types) + 1
