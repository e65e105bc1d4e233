"""Model families, one package each (`docunet/models/<family>/`), found by `model_type`.

A checkpoint's or export's `config.json` names its family in `model_type`; a config without it
(everything written before families existed) is a DocuNet config. Families are imported on first
use, so importing docunet does not import every model.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from .base import ExportSpec, Fp16Policy, GraphSpec, ModelFamily, ParityOutputs

DEFAULT_MODEL_TYPE = "docunet"
# model_type -> module whose FAMILY attribute is the ModelFamily
FAMILY_MODULES = {"docunet": "docunet.models.docunet", "plmarker-ner": "docunet.models.plmarker",
                  "plmarker-re": "docunet.models.plmarker.re_family"}
_loaded: dict[str, ModelFamily] = {}


def get_family(model_type: str) -> ModelFamily:
    """The family registered under `model_type`; ValueError naming the known ones otherwise."""
    if model_type not in _loaded:
        if model_type not in FAMILY_MODULES:
            raise ValueError(f"unknown model_type {model_type!r}; this docunet knows {', '.join(sorted(FAMILY_MODULES))}")
        _loaded[model_type] = importlib.import_module(FAMILY_MODULES[model_type]).FAMILY
    return _loaded[model_type]


def family_of(config: Any) -> ModelFamily:
    """The family a config object belongs to."""
    return get_family(getattr(type(config), "model_type", DEFAULT_MODEL_TYPE))


def config_from_dict(data: dict) -> Any:
    """A config object of the family named in `data["model_type"]` (DocuNet when absent)."""
    return get_family(data.get("model_type", DEFAULT_MODEL_TYPE)).config_class.from_dict(data)


def load_config(path: str | Path) -> Any:
    """Read a `config.json` of any family."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a model config is a JSON object, got {type(data).__name__}")
    return config_from_dict(data)


__all__ = ["DEFAULT_MODEL_TYPE", "ExportSpec", "Fp16Policy", "GraphSpec", "ModelFamily", "ParityOutputs", "config_from_dict",
           "family_of", "get_family", "load_config"]
