"""What every command shares: option types that check their values before any model is loaded, one
error form (`error: <path or option>: what is wrong`, exit 2 for usage and input errors, 1 for
failures, 130 for Ctrl-C), quiet library loading, and defaults read from the settings dataclasses."""
from __future__ import annotations

import dataclasses
import json
import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click
import torch

from ..artifacts import (
    MANIFEST_FILE,
    ManifestError,
    is_checkpoint,
    is_export,
    source_checkpoint,
)
from ..documents import DataError
from ..engines.tensorrt import TensorRTUnavailable
from ..pipeline.bundle import is_pipeline
from ..pretrained import available
from ..readers import STDIN, DataSpec, check_readable
from ..runtime.backends import BackendUnavailable

USAGE, FAILED, INTERRUPTED = 2, 1, 130
CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True}


class Command(click.Command):
    """A click command whose usage errors are one line, `error: <option or path>: what is wrong (see --help)`,
    with exit status 2, instead of click's usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()} (see --help)", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(FAILED)
        sys.exit(0)


class DeviceType(click.ParamType):
    """cpu, auto, cuda or cuda:N; a CUDA device must exist here."""

    name = "device"

    def convert(self, value: Any, param, ctx) -> str:
        text = str(value).strip().lower()
        if text in ("cpu", "auto"):
            return text
        if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
            if not torch.cuda.is_available():
                self.fail(f"{value!r}: torch sees no CUDA device on this machine (use --device cpu)", param, ctx)
            index = int(text[5:]) if ":" in text else 0
            if index >= torch.cuda.device_count():
                self.fail(f"{value!r}: this machine has {torch.cuda.device_count()} CUDA device(s)", param, ctx)
            return text
        self.fail(f"{value!r} is not a device: use cpu, cuda, cuda:N or auto", param, ctx)


class ModelDirType(click.ParamType):
    """A model directory of the kinds asked for: a checkpoint (config.json + model.safetensors) and/or an
    export (manifest.json); checked before anything is loaded, with a message that says what it is."""

    name = "dir"

    def __init__(self, checkpoint: bool = True, export: bool = True, pipeline: bool = False):
        self.checkpoint, self.export, self.pipeline = checkpoint, export, pipeline

    def convert(self, value: Any, param, ctx) -> Path:
        path = Path(value)
        if not path.exists():
            shipped = available()
            if str(value) in shipped:  # the name of a model shipped with docunet
                path = shipped[str(value)]
            else:
                self.fail(f"{path}: no such directory (nor a shipped model: {', '.join(shipped) or 'none installed'})", param, ctx)
        if not path.is_dir():
            self.fail(f"{path}: is a file, not a model directory", param, ctx)
        if self.checkpoint and is_checkpoint(path) or self.export and is_export(path) or self.pipeline and is_pipeline(path):
            return path
        if is_pipeline(path):
            self.fail(f"{path}: is a pipeline bundle (entity + relation models); this command needs one model's "
                      "checkpoint or export (the bundle's ner/ or relations/ folder)", param, ctx)
        if is_export(path):  # an export where a checkpoint is needed
            self.fail(f"{path}: is a docunet-export directory, and this command needs a checkpoint (the export came "
                      f"from {source_checkpoint(path)})", param, ctx)
        wanted = " or ".join(w for w, ok in (("a checkpoint (config.json + model.safetensors)", self.checkpoint),
                                             (f"an export ({MANIFEST_FILE})", self.export),
                                             ("a pipeline bundle (pipeline.json)", self.pipeline)) if ok)
        self.fail(f"{path}: not a docunet model directory: expected {wanted}", param, ctx)


class InputType(click.ParamType):
    """A data spec read by every command: FILE, FILE[start:stop] or - (stdin); the file must be readable."""

    name = "input"

    def __init__(self, stdin: bool = True, folders: bool = False):
        self.stdin, self.folders = stdin, folders

    def convert(self, value: Any, param, ctx) -> str:
        text = str(value)
        if text == STDIN:
            if not self.stdin:
                self.fail("stdin (-) is not accepted here; give a file", param, ctx)
            return text
        if self.folders and Path(text).is_dir():
            return text
        try:
            spec = DataSpec.parse(text)
            check_readable(spec.path)
        except DataError as exc:
            self.fail(str(exc), param, ctx)
        if spec.path.stat().st_size == 0:
            self.fail(f"{spec.path}: is empty", param, ctx)
        return text


class SettingType(click.ParamType):
    """KEY=VALUE: a serve-time model setting (the model config's `serving_settings`, e.g. prune_ratio=0.3 for an
    entity model; ner.KEY=VALUE for a pipeline bundle's entity model, coref.KEY=VALUE for its coreference rules).
    VALUE is read as JSON (numbers, true/false, lists), else kept as a string."""

    name = "key=value"

    def convert(self, value: Any, param, ctx) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, sep, raw = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r}: expected KEY=VALUE, e.g. prune_ratio=0.3", param, ctx)
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = raw
        return key.strip(), parsed


def runtime_settings(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """--setting pairs -> Runtime.load keywords: `settings` for the model, `ner_settings` for a bundle's entity model,
    `coref_settings` for a bundle's coreference rules (docunet.coref.CorefRules fields)."""
    model = {k: v for k, v in pairs if not k.startswith(("ner.", "coref."))}
    ner = {k[4:]: v for k, v in pairs if k.startswith("ner.")}
    coref = {k[6:]: v for k, v in pairs if k.startswith("coref.")}
    return {**({"settings": model} if model else {}), **({"ner_settings": ner} if ner else {}),
            **({"coref_settings": coref} if coref else {})}


def check_output(path: Path | None, overwrite: bool = False, append: bool = False, option: str = "--out") -> None:
    """An output file must be creatable: its folder exists and is writable, it is not a folder, and an
    existing file is only replaced with `overwrite` (or continued with `append`)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise click.BadParameter(f"{path}: is a directory; give a file name", param_hint=option)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise click.BadParameter(f"{folder}: no such directory (create it first)", param_hint=option)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"{folder}: not writable", param_hint=option)
    if path.exists() and not (overwrite or append):
        raise click.BadParameter(f"{path}: exists; pass --overwrite to replace it" + (" or --resume to continue it" if
                                 option == "--out" else ""), param_hint=option)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def clean_errors(func: Callable) -> Callable:
    """No tracebacks: data and model errors become one `error:` line naming the file or option (exit 2),
    Ctrl-C stops cleanly (exit 130), anything unexpected is one line too (exit 1; DOCUNET_DEBUG=1 re-raises)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(INTERRUPTED)
        except (DataError, ManifestError, BackendUnavailable, TensorRTUnavailable, FileNotFoundError, PermissionError,
                IsADirectoryError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USAGE)
        except Exception as exc:  # noqa: BLE001 - one line instead of a traceback
            if os.environ.get("DOCUNET_DEBUG"):
                raise
            click.echo(f"error: {type(exc).__name__}: {exc} (DOCUNET_DEBUG=1 shows the traceback)", err=True)
            sys.exit(FAILED)

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
