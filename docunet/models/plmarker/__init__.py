"""PL-Marker (Ye et al., ACL 2022, "Packed Levitated Marker"): span NER with packed levitated markers.

config -> featurize (candidate spans, context windows shared by sentences, word shapes, neighbourhood
packing) -> batching (window batches; the dense packed layout as the reference) -> modeling (stock encoder:
text once, then the markers against its cached states; span classifier; boundary scorer for pruning), with
the export spec beside the model and the family contract in family.py (pruning, decoding flat or nested). Only the config is
imported eagerly; the model modules load on first use.
"""
from __future__ import annotations

import importlib

from .config import PLMarkerNERConfig

_LAZY = {"FAMILY": ".family", "PLMarkerNERFamily": ".family", "SpanFeaturizer": ".featurize", "PLMarkerNER": ".modeling"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = ["FAMILY", "PLMarkerNER", "PLMarkerNERConfig", "PLMarkerNERFamily", "SpanFeaturizer"]
