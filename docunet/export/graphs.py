"""One exported graph from its spec: torch.onnx (dynamo) export, dynamic-axis check, I/O description.

`export_graph` reads everything from a `GraphSpec` (models/base.py): the module to trace, example
inputs, input/output names, dynamic axes and their ranges, and the transformer to trace with plain
(eager) attention. Every declared dynamic axis is checked to be symbolic in the written graph.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts import graph_io
from ..models.base import GraphSpec

DEFAULT_OPSET = 18
EXTERNAL_DATA_BYTES = 1_800_000_000  # beyond this the weights go to a `.data` file next to the graph


class ExportError(RuntimeError):
    """The export cannot proceed (bad input, non-dynamic axis, unusable output directory...)."""


@contextlib.contextmanager
def quiet_exporter(enabled: bool = True):
    """Silence the exporter's step printing, warnings and logging (the CLI has its own progress display)."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "torch.fx", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


@contextlib.contextmanager
def plain_attention(transformer: nn.Module):
    """Trace the transformer with its plain (eager) attention: matmul, mask, softmax, matmul.

    Exported from sdpa, every layer carries the decomposition's guard against fully masked rows
    (IsNaN + Where over the [W, H, T, T] scores), which took about 14% of the int8 encoder's time
    on CPU; ONNX Runtime fuses the plain form instead. Same values either way (the validation
    step compares the graph with the PyTorch model)."""
    cfg = transformer.config
    before = cfg._attn_implementation
    set_impl = getattr(transformer, "set_attn_implementation", None) or (lambda impl: setattr(cfg, "_attn_implementation", impl))
    set_impl("eager")
    try:
        yield
    finally:
        set_impl(before)


def check_dynamic_axes(path: Path, axes: dict[str, dict[int, str]]) -> dict[str, list]:
    """Every declared dynamic axis must be symbolic in the written graph; axes sharing a name share a symbol."""
    io_spec = graph_io(path)
    shapes = {spec["name"]: spec["shape"] for spec in io_spec["inputs"]}
    symbols: dict[str, str] = {}
    for name, dims in axes.items():
        if name not in shapes:
            raise ExportError(f"{path}: input {name!r} is missing (inputs: {sorted(shapes)})")
        for axis, label in dims.items():
            dim = shapes[name][axis]
            if not isinstance(dim, str) or dim == "?":
                raise ExportError(f"{path}: axis {axis} ({label}) of input {name!r} was exported as {dim!r}, not as a dynamic dimension")
            if symbols.setdefault(label, dim) != dim:
                raise ExportError(f"{path}: axis {label!r} has two different symbols ({symbols[label]!r}, {dim!r}) across inputs")
    return shapes


def export_graph(spec: GraphSpec, model: nn.Module, config: Any, path: Path, opset: int = DEFAULT_OPSET,
                 quiet: bool = True) -> dict:
    """Write the graph `spec` describes, traced from `model`, to `path`; check its axes; return its I/O."""
    dims = {name: torch.export.Dim(name, min=lo, max=hi) for name, (lo, hi) in spec.dims(config).items()}
    dynamic_shapes = tuple({axis: dims[label] for axis, label in spec.axes[n].items()} for n in spec.inputs)
    module = spec.module(model).eval()
    big = sum(p.numel() * p.element_size() for p in module.parameters()) > EXTERNAL_DATA_BYTES
    attention = plain_attention(spec.transformer(model)) if spec.transformer else contextlib.nullcontext()
    with attention, quiet_exporter(quiet), torch.no_grad():
        program = torch.onnx.export(module, spec.example(config), dynamo=True, input_names=list(spec.inputs),
                                    output_names=list(spec.outputs), dynamic_shapes=dynamic_shapes, opset_version=opset,
                                    external_data=big, verbose=False)
        program.save(str(path), external_data=big)
    check_dynamic_axes(path, {k: dict(v) for k, v in spec.axes.items()})
    return graph_io(path)
