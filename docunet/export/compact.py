"""Smaller int8 exports: weight transposes folded before quantization, embedding tables quantized, and
weights that several graphs of one export hold stored once.

An int8 MiniLM encoder is mostly its word-embedding table (30522 x 384 fp32 = 47 MB, against 11 MB of
int8 layers), which ONNX Runtime's quantizer leaves in fp32 because a Gather has no int8 kernel. Here a
table read by Gather becomes quantized rows plus their scales, dequantized after the lookup with standard
ONNX ops (Gather, Cast, Mul, BitwiseAnd, BitShift), so any engine runs it and only the looked-up rows cost
time:
- 8 bits: symmetric, one fp32 scale per row (x = q * s);
- 4 bits: asymmetric blocks of `block` values along the row, fp16 scale and minimum per block
  (x = q * s + m, q in 0..15), two values per byte.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

EMBEDDING_BITS = (32, 8, 4)  # 32: leave the tables in fp32
MIN_TABLE_ELEMENTS = 65536  # smaller tables (token types, marker rows) stay fp32: they weigh nothing
SHARED_WEIGHTS_FILE = "weights.bin"


def fold_weight_transposes(model: onnx.ModelProto) -> int:
    """Replace every Transpose of a constant weight by the transposed constant, so the dynamic quantizer
    (which quantizes MatMuls whose second input is an initializer) sees the weight. The span graph reads
    each layer's key and value weights twice (text and markers), so the exporter keeps one Transpose for
    both instead of folding it. Returns the number of Transposes folded."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    readers = _reader_counts(graph)
    kept, folded = [], 0
    for n in graph.node:
        if n.op_type == "Transpose" and n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.FLOAT:
            perm = next((list(a.ints) for a in n.attribute if a.name == "perm"), None)
            value = numpy_helper.to_array(inits[n.input[0]])
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(np.transpose(value, perm)), n.output[0]))
            folded += 1
            readers[n.input[0]] -= 1
            continue
        kept.append(n)
    if folded:
        del graph.node[:]
        graph.node.extend(kept)
        unused = {name for name, count in readers.items() if count == 0 and name in inits}
        remaining = [t for t in graph.initializer if t.name not in unused]
        del graph.initializer[:]
        graph.initializer.extend(remaining)
    return folded


def _reader_counts(graph: onnx.GraphProto) -> Counter:
    """How many node inputs read each value (an initializer read by nobody can be dropped)."""
    return Counter(i for n in graph.node for i in n.input)


def quantize_table_int8(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `table` [V, D] as int8 with one scale per row: (q [V, D] int8, scales [V, 1] fp32)."""
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.rint(table / scale), -127, 127).astype(np.int8), scale


def quantize_table_int4(table: np.ndarray, block: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of `table` [V, D] in 4-bit blocks: (packed [V, D/2] uint8, scales [V, D/block] fp16, minima
    [V, D/block] fp16). Value 2i of a row is the low nibble of byte i, value 2i+1 the high one."""
    V, D = table.shape
    if D % block or block % 2:
        raise ValueError(f"embedding width {D} is not a multiple of the 4-bit block {block} (an even number)")
    blocks = table.reshape(V, D // block, block)
    lo, hi = blocks.min(axis=2), blocks.max(axis=2)
    scale = ((hi - lo) / 15.0).astype(np.float16)
    minimum = lo.astype(np.float16)
    s = np.where(scale.astype(np.float32) > 0, scale.astype(np.float32), 1.0)[..., None]
    q = np.clip(np.rint((blocks - minimum.astype(np.float32)[..., None]) / s), 0, 15).astype(np.uint8).reshape(V, D)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale, minimum


def dequantize_table_int4(packed: np.ndarray, scale: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """The fp32 table that the 4-bit graph computes (for tests and error reports)."""
    V = packed.shape[0]
    q = np.stack([packed & 15, packed >> 4], axis=-1).reshape(V, -1).astype(np.float32)
    block = q.shape[1] // scale.shape[1]
    return (q.reshape(V, scale.shape[1], block) * scale.astype(np.float32)[..., None]
            + minimum.astype(np.float32)[..., None]).reshape(V, -1)


def _int8_lookup(name: str, indices: str, output: str, table: np.ndarray) -> tuple[list, list]:
    q, scale = quantize_table_int8(table)
    inits = [numpy_helper.from_array(q, f"{name}_int8"), numpy_helper.from_array(scale, f"{name}_row_scale")]
    p = f"{output}_dq"
    nodes = [
        helper.make_node("Gather", [f"{name}_int8", indices], [f"{p}_q"], axis=0, name=f"{p}_gather_rows"),
        helper.make_node("Gather", [f"{name}_row_scale", indices], [f"{p}_s"], axis=0, name=f"{p}_gather_scales"),
        helper.make_node("Cast", [f"{p}_q"], [f"{p}_f"], to=TensorProto.FLOAT, name=f"{p}_cast"),
        helper.make_node("Mul", [f"{p}_f", f"{p}_s"], [output], name=f"{p}_scale"),
    ]
    return nodes, inits


def _int4_lookup(name: str, indices: str, output: str, table: np.ndarray, block: int) -> tuple[list, list]:
    packed, scale, minimum = quantize_table_int4(table, block)
    D = table.shape[1]
    p = f"{output}_dq"
    inits = [numpy_helper.from_array(packed, f"{name}_int4"), numpy_helper.from_array(scale, f"{name}_block_scale"),
             numpy_helper.from_array(minimum, f"{name}_block_min"),
             numpy_helper.from_array(np.array(15, np.uint8), f"{p}_mask"), numpy_helper.from_array(np.array(4, np.uint8), f"{p}_shift"),
             numpy_helper.from_array(np.array([D // block, block], np.int64), f"{p}_blocks"),
             numpy_helper.from_array(np.array([D], np.int64), f"{p}_width"),
             numpy_helper.from_array(np.array([-1], np.int64), f"{p}_last")]
    nodes = [
        helper.make_node("Gather", [f"{name}_int4", indices], [f"{p}_packed"], axis=0, name=f"{p}_gather_rows"),
        helper.make_node("BitwiseAnd", [f"{p}_packed", f"{p}_mask"], [f"{p}_lo"], name=f"{p}_low"),
        helper.make_node("BitShift", [f"{p}_packed", f"{p}_shift"], [f"{p}_hi"], direction="RIGHT", name=f"{p}_high"),
        helper.make_node("Unsqueeze", [f"{p}_lo", f"{p}_last"], [f"{p}_lo1"], name=f"{p}_lo_axis"),
        helper.make_node("Unsqueeze", [f"{p}_hi", f"{p}_last"], [f"{p}_hi1"], name=f"{p}_hi_axis"),
        helper.make_node("Concat", [f"{p}_lo1", f"{p}_hi1"], [f"{p}_pairs"], axis=-1, name=f"{p}_interleave"),
        helper.make_node("Shape", [indices], [f"{p}_lead"], name=f"{p}_index_shape"),
        helper.make_node("Concat", [f"{p}_lead", f"{p}_blocks"], [f"{p}_block_shape"], axis=0, name=f"{p}_block_shape"),
        helper.make_node("Concat", [f"{p}_lead", f"{p}_width"], [f"{p}_row_shape"], axis=0, name=f"{p}_row_shape"),
        helper.make_node("Reshape", [f"{p}_pairs", f"{p}_block_shape"], [f"{p}_qb"], name=f"{p}_to_blocks"),
        helper.make_node("Cast", [f"{p}_qb"], [f"{p}_qf"], to=TensorProto.FLOAT, name=f"{p}_cast"),
        helper.make_node("Gather", [f"{name}_block_scale", indices], [f"{p}_s16"], axis=0, name=f"{p}_gather_scales"),
        helper.make_node("Gather", [f"{name}_block_min", indices], [f"{p}_m16"], axis=0, name=f"{p}_gather_minima"),
        helper.make_node("Cast", [f"{p}_s16"], [f"{p}_s"], to=TensorProto.FLOAT, name=f"{p}_cast_scales"),
        helper.make_node("Cast", [f"{p}_m16"], [f"{p}_m"], to=TensorProto.FLOAT, name=f"{p}_cast_minima"),
        helper.make_node("Unsqueeze", [f"{p}_s", f"{p}_last"], [f"{p}_s1"], name=f"{p}_scale_axis"),
        helper.make_node("Unsqueeze", [f"{p}_m", f"{p}_last"], [f"{p}_m1"], name=f"{p}_min_axis"),
        helper.make_node("Mul", [f"{p}_qf", f"{p}_s1"], [f"{p}_scaled"], name=f"{p}_scale"),
        helper.make_node("Add", [f"{p}_scaled", f"{p}_m1"], [f"{p}_xb"], name=f"{p}_shift_min"),
        helper.make_node("Reshape", [f"{p}_xb", f"{p}_row_shape"], [output], name=f"{p}_to_rows"),
    ]
    return nodes, inits


def quantize_embedding_tables(model: onnx.ModelProto, bits: int = 8, block: int = 32, min_elements: int | None = None) -> dict:
    """Quantize every fp32 table of at least `min_elements` (default MIN_TABLE_ELEMENTS) that a Gather along axis 0 reads (the word and
    position embeddings), in place; returns what was done, for the manifest. `bits` 32 changes nothing."""
    if bits not in EMBEDDING_BITS:
        raise ValueError(f"embedding bits must be one of {EMBEDDING_BITS}, got {bits}")
    if bits == 32:
        return {"bits": 32, "tables": {}}
    min_elements = MIN_TABLE_ELEMENTS if min_elements is None else min_elements
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    readers = _reader_counts(graph)
    nodes, new_inits, tables = [], [], {}
    for n in graph.node:
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        source = inits.get(n.input[0]) if n.op_type == "Gather" else None
        if (source is None or axis != 0 or source.data_type != TensorProto.FLOAT or len(source.dims) != 2
                or int(np.prod(source.dims)) < min_elements):
            nodes.append(n)
            continue
        table = numpy_helper.to_array(source).astype(np.float32)
        if bits == 8:
            lookup, created = _int8_lookup(source.name, n.input[1], n.output[0], table)
            restored = quantize_table_int8(table)
            error = np.abs(restored[0].astype(np.float32) * restored[1] - table)
        else:
            lookup, created = _int4_lookup(source.name, n.input[1], n.output[0], table, block)
            error = np.abs(dequantize_table_int4(*quantize_table_int4(table, block)) - table)
        if source.name not in tables:
            new_inits += created
        else:  # a second Gather of the same table: reuse its quantized initializers
            names = {t.name for t in created if t.name.startswith(source.name)}
            new_inits += [t for t in created if t.name not in names]
        nodes += lookup
        readers[source.name] -= 1
        tables[source.name] = {"shape": list(source.dims), "fp32_bytes": table.nbytes,
                               "bytes": sum(int(np.prod(t.dims)) * (1 if t.data_type in (TensorProto.INT8, TensorProto.UINT8) else
                                                                    2 if t.data_type == TensorProto.FLOAT16 else 4)
                                            for t in created if t.name.startswith(source.name)),
                               "max_abs_error": float(error.max()), "mean_abs_error": float(error.mean()),
                               "mean_abs_value": float(np.abs(table).mean())}
    if tables:
        del graph.node[:]
        graph.node.extend(nodes)
        keep = [t for t in graph.initializer if not (t.name in tables and readers.get(t.name, 0) == 0)]
        del graph.initializer[:]
        graph.initializer.extend(keep + new_inits)
        if bits == 4:
            _require_opset(model, 18)  # BitwiseAnd
    info: dict = {"bits": bits, "tables": tables}
    if bits == 4:
        info["block"] = block
    return info


def _require_opset(model: onnx.ModelProto, version: int) -> None:
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version < version:
            raise ValueError(f"4-bit embedding tables need ONNX opset >= {version} (BitwiseAnd); the graph has {op.version}")


def share_weights(directory: Path, graph_files: list[str], weights_file: str = SHARED_WEIGHTS_FILE,
                  min_bytes: int = 1024) -> dict:
    """Store the initializers of several graphs in one external-data file, each distinct tensor once.

    The PL-Marker span graph runs the markers through the same layers as the text graph, so their int8
    weights are byte for byte the same; kept apart, every layer is stored twice. Tensors of at least
    `min_bytes` go to `weights_file` (deduplicated by content), smaller ones stay in the graphs. Returns
    the bytes before and after, or {} (nothing written) when the graphs share nothing."""
    models = {f: onnx.load(str(directory / f)) for f in graph_files}
    seen: dict[str, int] = {}
    total = 0
    for m in models.values():
        for t in m.graph.initializer:
            if t.HasField("raw_data") and len(t.raw_data) >= min_bytes:
                seen[_tensor_key(t)] = seen.get(_tensor_key(t), 0) + 1
                total += len(t.raw_data)
    if not any(count > 1 for count in seen.values()):
        return {}
    before = sum((directory / f).stat().st_size for f in graph_files)
    offsets: dict[str, tuple[int, int]] = {}
    with open(directory / weights_file, "wb") as out:
        for m in models.values():
            for t in m.graph.initializer:
                if not (t.HasField("raw_data") and len(t.raw_data) >= min_bytes):
                    continue
                key = _tensor_key(t)
                if key not in offsets:
                    pad = (-out.tell()) % 64
                    out.write(b"\0" * pad)
                    offsets[key] = (out.tell(), len(t.raw_data))
                    out.write(t.raw_data)
                offset, length = offsets[key]
                t.ClearField("raw_data")
                t.data_location = TensorProto.EXTERNAL
                del t.external_data[:]
                for k, v in (("location", weights_file), ("offset", str(offset)), ("length", str(length))):
                    t.external_data.add(key=k, value=v)
    for f, m in models.items():
        onnx.save(m, str(directory / f))
    after = sum((directory / f).stat().st_size for f in graph_files) + (directory / weights_file).stat().st_size
    return {"file": weights_file, "graphs": list(graph_files), "tensors": sum(seen.values()), "distinct": len(offsets),
            "bytes_before": before, "bytes_after": after}


def _tensor_key(t: TensorProto) -> str:
    return f"{t.data_type}:{list(t.dims)}:{hashlib.sha256(t.raw_data).hexdigest()}"
