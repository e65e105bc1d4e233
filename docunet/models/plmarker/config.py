"""PLMarkerNERConfig: everything a PL-Marker span NER model needs to be rebuilt and served (`config.json`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config_file import ConfigFile


ONE_CASE_SHAPES = ("guess", "guess-sentence-case", "literal")


class MarkerEncoderSettings:
    """What every PL-Marker model (entities and relations) reads off its encoder config and text window."""

    encoder_config: dict
    max_seq_length: int

    @property
    def hidden_size(self) -> int:
        return int(self.encoder_config["hidden_size"])

    @property
    def text_window(self) -> int:
        """Word pieces of one instance's text (markers inside the text included), capped by the encoder's
        position embeddings."""
        return min(self.max_seq_length, int(self.encoder_config.get("max_position_embeddings", self.max_seq_length)))


@dataclass
class PLMarkerNERConfig(MarkerEncoderSettings, ConfigFile):
    model_type: ClassVar[str] = "plmarker-ner"
    serving_settings: ClassVar[tuple[str, ...]] = ("prune_ratio", "prune_min_spans", "dense_pass", "nested", "prior_correction",
                                                    "one_case_shapes")  # Runtime(settings=...) may change
    entity_types: list[str] = field(default_factory=list)  # label 0 is "no entity"; type k is label k + 1
    encoder_name: str = ""
    encoder_config: dict[str, Any] = field(default_factory=dict)  # the transformers config, to rebuild offline
    max_seq_length: int = 512  # text window of an instance (the sentence and its document context), special tokens included
    max_pair_length: int = 256  # K: candidate spans (start + end marker pairs) packed into one instance
    max_span_width: int = 8  # W: longest candidate span, in words
    nested: bool = False  # decoding: False drops a span overlapping any better one (flat, DocRED); True only same-type overlaps
    dropout: float = 0.1
    # training only: the fraction of non-entity candidate spans kept (a fixed random sample); 1.0 keeps all, as the
    # original. Fewer markers make CPU training affordable; serving scores every candidate (or the pruned set)
    train_negative_ratio: float = 1.0
    # word shapes (lower, Title, UPPER, MiXed, digit, other) of a span's first, last, previous and next word as extra
    # span features: the uncased encoder cannot see capitalisation
    shape_features: bool = True
    # text all in lower case or all in capitals (featurize.one_case) has lost what the shapes read: "guess" gives its
    # words the shapes they most likely had as written (closed-class words lower, the others Title), "literal" reads
    # them as they are. On one-case text (DocRED test.json [0:150], an entity model that never saw it) guessing
    # gains +0.8 typed F1 in lower case and costs 0.2 in capitals; on Re-DocRED [400:500] the shipped model goes
    # from 46.6 to 78.4 in lower case and 74.6 to 78.4 in capitals (84.1 as written; benchmarks/ner_short_texts.py).
    # "guess-sentence-case" also guesses for text of 20 words or more capitalised only where sentences start (speech
    # recognition with punctuation restored: 49.6 -> 78.4); not the default, because text written properly can look
    # like that too (17 of SciERC's 100 test abstracts, 66 of CDR's 500: benchmarks/case_census.py)
    one_case_shapes: str = "guess"
    # how much of the prior correction log(1 / train_negative_ratio) decoding adds to the "none" logit: 1 is the
    # full Bayes correction (the best accuracy per span), less trades precision for recall. Measured on Re-DocRED
    # [400:500] with the default recipe (README): 0.25 gains 1.7 untyped and 0.8 typed mention F1 over 1
    prior_correction: float = 1.0
    # candidate pruning at inference: a boundary scorer on the text states keeps the best ceil(prune_ratio x words)
    # candidates of each window for the marker pass; 0 scores every candidate. Measured on Re-DocRED [400:500]
    # (README): 0.4 keeps typed F1 within 0.02 of every candidate scored; 0.3 costs 0.6, 0.2 costs 5
    prune_ratio: float = 0.4
    # ... but never fewer than this many per window (or all its candidates): a short text's budget is small, and the
    # boundary sums of its few entities' starts and ends ("Opel was founded by Adam Opel") fill it before the entities
    # do. On one-sentence texts (DocRED test.json [0:150], an entity model that never saw them) 32 recovers what
    # pruning cost (typed F1 78.61 -> 79.91; every candidate scored: 79.93; 48: 80.08 but 1.4x the time); a DocRED
    # document's budget is larger anyway (benchmarks/ner_short_texts.py)
    prune_min_spans: int = 32
    # serve the original's dense packed pass instead (text and K marker pairs in one [T, T] sequence per instance;
    # the same logits within 1e-4, slower): a reference for comparison, PyTorch checkpoints only
    dense_pass: bool = False
    marker_ids: list[int] = field(default_factory=list)  # the start and end marker tokens (set from the tokenizer)

    def __post_init__(self) -> None:
        if self.max_seq_length < 8 or self.max_pair_length < 1 or self.max_span_width < 1:
            raise ValueError("max_seq_length must be >= 8, max_pair_length and max_span_width >= 1")
        if not 0.0 <= self.prune_ratio:
            raise ValueError(f"prune_ratio must be >= 0, not {self.prune_ratio}")
        if not (isinstance(self.prune_min_spans, int) and self.prune_min_spans >= 0):
            raise ValueError(f"prune_min_spans must be an integer >= 0, not {self.prune_min_spans!r}")
        if self.one_case_shapes not in ONE_CASE_SHAPES:
            raise ValueError(f"one_case_shapes must be one of {', '.join(ONE_CASE_SHAPES)}, not {self.one_case_shapes!r}")
        if not 0.0 <= self.prior_correction:
            raise ValueError(f"prior_correction must be >= 0, not {self.prior_correction}")
        if len(set(self.entity_types)) != len(self.entity_types):
            raise ValueError(f"entity_types has duplicates: {self.entity_types}")

    @property
    def num_labels(self) -> int:
        return len(self.entity_types) + 1

