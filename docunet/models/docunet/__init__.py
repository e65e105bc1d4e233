"""DocuNet (Zhang et al., IJCAI 2021): document-level relation extraction as semantic segmentation
of the entity-by-entity matrix.

config -> featurize -> batching -> modeling (+ layers) -> losses, with the export spec beside the
model and the family contract in family.py. Only the config is imported eagerly (it is all that
reading a config.json needs); the model modules load on first use.
"""
from __future__ import annotations

import importlib

from .config import DOCRED_ENTITY_TYPES, DocuNetConfig

_LAZY = {"FAMILY": ".family", "DocuNetFamily": ".family", "DocFeatures": ".featurize", "Featurizer": ".featurize",
         "DocuNet": ".modeling"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = ["DOCRED_ENTITY_TYPES", "DocFeatures", "DocuNet", "DocuNetConfig", "DocuNetFamily", "FAMILY", "Featurizer"]
