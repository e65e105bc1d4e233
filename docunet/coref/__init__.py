"""Coreference for the raw-text pipeline: predicted mentions -> entities."""
from .rules import (
    DEFAULT_RULES,
    CorefRules,
    cluster_mentions,
    entities_from_clusters,
    normalise_words,
)

__all__ = ["DEFAULT_RULES", "CorefRules", "cluster_mentions", "entities_from_clusters", "normalise_words"]
