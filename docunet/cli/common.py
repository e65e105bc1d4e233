"""Small helpers shared by the command-line tools."""
from __future__ import annotations

import dataclasses
import functools
import sys
from typing import Any

import click
import torch

from ..documents import DataError


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(device)


def fail_on_data_error(func):
    """Turn DataError into a one-line message naming the file/line/document and field, exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DataError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass field `name`: every CLI default comes from the settings dataclasses,
    so it is written once."""
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        raise AttributeError(f"{cls.__name__} has no field {name!r}")
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise AttributeError(f"{cls.__name__}.{name} has no default")
