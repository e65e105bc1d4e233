"""The precision step of an export: fp32 graphs -> the fp16 or int8 variant, graph by graph, as the
export spec's policies say (fp16: `GraphSpec.fp16`; int8: `GraphSpec.int8`), plus the optional
ONNX Runtime fusions of transformer graphs. Returns what was done, for the manifest."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import onnx

from ..engines.int8_weights import requantize_to_7bit
from ..models.base import ExportSpec
from .compact import SHARED_WEIGHTS_FILE, quantize_embedding_tables, share_weights
from .fp16 import export_fp16
from .fusion import CONTRIB_DOMAIN, fuse_encoder
from .graphs import EXTERNAL_DATA_BYTES
from .int8 import quantize_dynamic_int8, quantize_static_int8


def graph_files(directory: Path, name: str) -> list[str]:
    """A graph file and its external-data files (`NAME.data`..., and the weights file that an int8 export's
    graphs share)."""
    return [p.name for p in directory.iterdir() if p.name == name or p.name.startswith(name + ".") or p.name == SHARED_WEIGHTS_FILE]


def move_graph(src_dir: Path, dst_dir: Path, name: str) -> None:
    for f in graph_files(src_dir, name):
        shutil.move(str(src_dir / f), dst_dir / f)


def fuse_transformer_graph(path: Path, num_heads: int, hidden_size: int, attention: bool = True) -> dict:
    """Replace the graph at `path` by its ONNX Runtime-fused form (in place); a graph that is already
    fused (reused with --fp32-from) or that does not match the fusion patterns stays as it is."""
    if any(n.domain == CONTRIB_DOMAIN for n in onnx.load(str(path), load_external_data=False).graph.node):
        return {"skipped": "the graph is already fused"}
    try:
        model, info = fuse_encoder(path, num_heads, hidden_size, attention)
    except ValueError as exc:
        warnings.warn(f"{path.name} left unfused: {exc}")
        return {"skipped": str(exc)}
    for f in graph_files(path.parent, path.name):
        (path.parent / f).unlink()
    external = model.ByteSize() > EXTERNAL_DATA_BYTES
    onnx.save(model, str(path), save_as_external_data=external, location=path.name + ".data" if external else None)
    return info


def make_variant(spec: ExportSpec, precision: str, work: Path, out_dir: Path, info: dict, reduce_range: bool = False,
                 static_int8: bool = False, calibrate: Callable[[str], list[dict[str, Any]]] | None = None,
                 embedding_bits: int = 8) -> dict:
    """Write the `precision` variant of every fp32 graph in `work` to `out_dir`; `info` holds what the
    fp32 step recorded (fusions). `static_int8`: also quantize graphs whose int8 policy is "static",
    calibrated on `calibrate(graph name)` (their inputs on real documents). Returns the manifest's
    precision details (one entry per graph: its precision, plus what its conversion did). int8: the
    embedding tables of dynamically quantized graphs get `embedding_bits` (8, 4, or 32 to keep them fp32),
    and tensors that several graphs hold alike are stored once (`compact.share_weights`)."""
    info = {**info, **{g.name: "fp32" for g in spec.graphs}}
    if precision == "fp32":
        for g in spec.graphs:
            move_graph(work, out_dir, g.file)
        return info
    if precision == "fp16":
        info = {g.name: "fp16" for g in spec.graphs}
        for g in spec.graphs:
            info[f"{g.name}_conversion"] = export_fp16(work / g.file, out_dir / g.file, g.fp16)
        info["kept_fp32"] = spec.kept_fp32
        return info
    info["int8_weight_bits"] = 7 if reduce_range else 8
    info["int8_weights_fit"] = (
        "every x86-64 CPU without saturating; on CPUs with VNNI or AMX, 8-bit weights measured 0.62 dev F1 better, "
        "which a 7-bit export cannot recover" if reduce_range else
        "CPUs with VNNI or AMX, and ARM, as exported; CPUs without VNNI (AVX2, AVX-512 without VNNI) saturate their int16 "
        "pair sums with them, so the runtime serves them there requantized to 7 bits in memory (int8_weights='auto')")
    for g in spec.graphs:
        if g.int8 == "dynamic":
            info[g.name] = "int8"
            info[f"{g.name}_quantization"] = quantize_dynamic_int8(work / g.file, out_dir / g.file, reduce_range)
            model = onnx.load(str(out_dir / g.file))
            info[f"{g.name}_embeddings"] = quantize_embedding_tables(model, embedding_bits)
            onnx.save(model, str(out_dir / g.file))
        elif g.int8 == "static" and static_int8:
            calibration = calibrate(g.name) if calibrate else []
            info[g.name] = "int8"
            info[f"{g.name}_quantization"] = quantize_static_int8(work / g.file, out_dir / g.file, calibration, reduce_range)
        else:
            move_graph(work, out_dir, g.file)
    shared = share_weights(out_dir, [g.file for g in spec.graphs if info[g.name] == "int8"])
    if shared:
        info["shared_weights"] = shared
    if not reduce_range:  # fail here, not on the first CPU without VNNI, if a graph's weights cannot be requantized
        info["int8_weights_requantized_to_7bit_at_load"] = {
            g.name: requantize_to_7bit(onnx.load(str(out_dir / g.file)))[1] for g in spec.graphs if info[g.name] == "int8"}
    return info
