"""Checkpoints are directories: config.json, model.safetensors and the tokenizer files.

`load_checkpoint` reads the family from config.json (`model_type`; DocuNet when absent), rebuilds
the encoder from the saved transformers config (no hub access needed) and loads every weight
strictly, so a reloaded model predicts exactly what the saved one did.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_model, save_model
from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from .artifacts import CONFIG_FILE, WEIGHTS_FILE
from .models import family_of, load_config


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Load without transformers' expected-but-alarming notices: the load report that lists the pooler
    weights we leave out as UNEXPECTED, the weight-loading bar, and the tokenizer's note that config.json
    names a docunet model."""
    before, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(path: str | Path):
    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(path))


def _without_pooler(factory, *args, **kwargs):
    try:
        return factory(*args, add_pooling_layer=False, **kwargs)
    except TypeError:  # architectures without a pooler argument
        return factory(*args, **kwargs)


def load_pretrained_transformer(name_or_path: str) -> torch.nn.Module:
    """A pretrained encoder with fused (sdpa) attention."""
    with quiet_transformers():
        return _without_pooler(AutoModel.from_pretrained, name_or_path, attn_implementation="sdpa")


def transformer_from_config(encoder_config: dict) -> torch.nn.Module:
    with quiet_transformers():
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
    return model, family.make_featurizer(load_tokenizer(path), config)
