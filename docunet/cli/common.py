"""Small helpers shared by the command-line tools."""
from __future__ import annotations

import sys

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
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DataError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper
