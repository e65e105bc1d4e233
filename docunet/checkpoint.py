"""Checkpoints are directories: config.json, model.safetensors and the tokenizer files.

`load_checkpoint` reads the family from config.json (`model_type`; DocuNet when absent), rebuilds
the encoder from the saved transformers config (no hub access needed) and loads every weight
strictly, so a reloaded model predicts exactly what the saved one did.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from transformers import AutoConfig, AutoModel, AutoTokenizer

from .artifacts import CONFIG_FILE, WEIGHTS_FILE
from .models import family_of, load_config


def _without_pooler(factory, *args, **kwargs):
    try:
        return factory(*args, add_pooling_layer=False, **kwargs)
    except TypeError:  # architectures without a pooler argument
        return factory(*args, **kwargs)


def load_pretrained_transformer(name_or_path: str) -> torch.nn.Module:
    """A pretrained encoder with fused (sdpa) attention."""
    return _without_pooler(AutoModel.from_pretrained, name_or_path, attn_implementation="sdpa")


def transformer_from_config(encoder_config: dict) -> torch.nn.Module:
    cfg = AutoConfig.for_model(**encoder_config)
    return _without_pooler(AutoModel.from_config, cfg, attn_implementation="sdpa")


def encoder_config_dict(transformer: torch.nn.Module) -> dict:
    d = transformer.config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures", "_attn_implementation_autoset", "dtype", "torch_dtype"):
        d.pop(key, None)
    return d


def save_checkpoint(model: torch.nn.Module, tokenizer, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save(out_dir / CONFIG_FILE)
    save_model(model, str(out_dir / WEIGHTS_FILE))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Any]:
    """(model, featurizer) of a checkpoint directory, for whichever family its config names."""
    path = Path(path)
    if not (path / CONFIG_FILE).exists() or not (path / WEIGHTS_FILE).exists():
        raise FileNotFoundError(f"{path}: not a docunet checkpoint (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    config = load_config(path / CONFIG_FILE)
    family = family_of(config)
    model = family.build_model(config, transformer_from_config(config.encoder_config))
    load_model(model, str(path / WEIGHTS_FILE), strict=True, device=str(device))
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return model, family.make_featurizer(tokenizer, config)
