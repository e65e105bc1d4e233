"""TensorRT compatibility of exported ONNX graphs, checked without TensorRT.

`check_compatibility` checks a graph against the TensorRT ONNX parser's documented support
(onnx-tensorrt `docs/operators.md` for TensorRT 10.15: opsets 9 to 24, the supported operators and
their data types): the opset, every op and the type it reads, int32 token inputs, the parser's
documented restrictions that apply to these graphs, and that every dynamic input dimension is
covered by the planned optimization profiles.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from ..artifacts import graph_io

TRT_OPSET_RANGE = (9, 24)

# ----------------------------------------------------------------------------------------------
# The TensorRT ONNX parser's documented support (onnx-tensorrt docs/operators.md, TensorRT 10.15)
# ----------------------------------------------------------------------------------------------
_F = "FP32 FP16 BF16"
_FI = _F + " INT32 INT64"
_FIB = _FI + " BOOL"
_SUPPORT_TABLE = {
    _F: "Acos Acosh Asin Asinh Atan Atanh AveragePool BatchNormalization Ceil Celu Clip Conv ConvTranspose Cos Cosh "
        "CumSum Dropout Einsum Elu Erf Exp Floor Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool GroupNormalization GRU "
        "HardSigmoid HardSwish Hardmax ImageScaler InstanceNormalization IsInf LayerNormalization LeakyRelu Log "
        "LogSoftmax LRN LSTM LpNormalization LpPool MatMul MaxPool MeanVarianceNormalization ParametricSoftplus PRelu "
        "QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Reciprocal Resize RMSNormalization "
        "RNN RotaryEmbedding Round ScaledTanh Scan Selu Sigmoid Sin Sinh Softmax Softplus Softsign Sqrt Tan Tanh "
        "ThresholdedRelu Upsample",
    _FI: "Abs Add ArgMax ArgMin DepthToSpace Div Equal Greater GreaterOrEqual IsNaN Less LessOrEqual Max Min Mod Mul "
         "Neg Pad Pow Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd "
         "ReduceSum ReduceSumSquare Relu Scatter ScatterElements ScatterND Shrink Sign SpaceToDepth Sub Sum TopK",
    _FIB: "Concat Expand EyeLike Flatten Gather GatherElements GatherND Identity If Loop OneHot Reshape ReverseSequence "
          "Shape Size Slice Split Squeeze Tile Transpose Trilu Unsqueeze Where",
    "FP32 FP16": "BlackmanWindow DeformConv GridSample HammingWindow HannWindow Mish NonMaxSuppression NonZero RoiAlign",
    "BOOL": "And Not Or Xor",
    "FP32": "STFT",
    _FI + " UINT8 BOOL": "Cast CastLike",
    _F + " FP8 FP4 INT4 INT32 INT64 BOOL": "Constant ConstantOfShape",
    _F + " INT8 FP8": "Attention",
    _F + " INT8 INT32 INT64": "Gelu",
    _FI + " FP8": "Mean",
    "INT8 FP8 FP4 INT4": "DequantizeLinear",
    _F + " INT32": "TensorScatter",
}
TRT_SUPPORTED_OPS: dict[str, frozenset] = {op: frozenset(types.split()) for types, ops in _SUPPORT_TABLE.items() for op in ops.split()}
_TYPE_NAMES = {1: "FP32", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16", 16: "BF16"}
_DATA_INPUT = {"Where": 1}  # which input carries the type the table describes (default: input 0)
_RESIZE_MODES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
TOKEN_INPUTS = ("input_ids", "attention_mask")


# ----------------------------------------------------------------------------------------------
# Compatibility check (no TensorRT needed)
# ----------------------------------------------------------------------------------------------
def check_profiles(inputs: list[dict], profiles: list[dict]) -> list[str]:
    """Problems with the profiles: every dynamic dimension of every input covered, static ones matched,
    shared symbols given the same range, and the profiles' ranges for each symbol without gaps."""
    problems = []
    if not profiles:
        return ["no optimization profile: every dynamic input would be fixed to [1, ...]"]
    ranges: dict[str, list[tuple[int, int]]] = {}
    for prof in profiles:
        pname = prof.get("name", "?")
        symbol_range: dict[str, tuple[int, int, int]] = {}
        for spec in inputs:
            name, shape = spec["name"], spec["shape"]
            shapes = prof["inputs"].get(name)
            if shapes is None:
                problems.append(f"profile {pname!r}: no shapes for input {name!r}")
                continue
            for key in ("min", "opt", "max"):
                if len(shapes[key]) != len(shape):
                    problems.append(f"profile {pname!r}: {name} {key} {shapes[key]} has rank {len(shapes[key])}, the graph {len(shape)}")
            if any(len(shapes[k]) != len(shape) for k in ("min", "opt", "max")):
                continue
            for axis, dim in enumerate(shape):
                lo, opt, hi = shapes["min"][axis], shapes["opt"][axis], shapes["max"][axis]
                if isinstance(dim, int):
                    if not lo == opt == hi == dim:
                        problems.append(f"profile {pname!r}: {name} axis {axis} is static {dim} in the graph, profile gives {lo}/{opt}/{hi}")
                    continue
                if dim == "?":
                    problems.append(f"{name} axis {axis} is dynamic without a name; it cannot be matched across inputs")
                if not 1 <= lo <= opt <= hi:
                    problems.append(f"profile {pname!r}: {name} axis {axis} ({dim}) needs 1 <= min <= opt <= max, got {lo}/{opt}/{hi}")
                prev = symbol_range.setdefault(dim, (lo, opt, hi))
                if prev != (lo, opt, hi):
                    problems.append(f"profile {pname!r}: dimension {dim!r} has ranges {prev} and {(lo, opt, hi)} on different inputs")
        for dim, (lo, _, hi) in symbol_range.items():
            ranges.setdefault(dim, []).append((lo, hi))
    for dim, spans in ranges.items():
        spans.sort()
        reach = spans[0][1]
        for lo, hi in spans[1:]:
            if lo > reach + 1:
                problems.append(f"dimension {dim!r}: sizes {reach + 1}..{lo - 1} are not covered by any profile")
            reach = max(reach, hi)
    return problems


def check_compatibility(path: Path, profiles: list[dict]) -> dict:
    """Check one ONNX graph against the TensorRT ONNX parser's documented support; see the module doc."""
    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    problems: list[str] = []
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if not TRT_OPSET_RANGE[0] <= opset <= TRT_OPSET_RANGE[1]:
        problems.append(f"opset {opset} is outside TensorRT's supported range {TRT_OPSET_RANGE[0]}..{TRT_OPSET_RANGE[1]}")
    types: dict[str, int] = {v.name: v.type.tensor_type.elem_type for v in list(g.input) + list(g.output) + list(g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    constants = {t.name for t in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    ops = Counter()
    unsupported: Counter = Counter()
    for node in g.node:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        ops[op] += 1
        allowed = TRT_SUPPORTED_OPS.get(op)
        if allowed is None:
            unsupported[op] += 1
            continue
        k = _DATA_INPUT.get(op, 0)
        if len(node.input) > k and node.input[k]:
            tname = _TYPE_NAMES.get(types.get(node.input[k], 0))
            if tname is not None and tname not in allowed:
                problems.append(f"{op} node {node.name!r} reads {tname}, TensorRT supports {sorted(allowed)} for {op}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if op == "ScatterND" and attrs.get("reduction", b"none") not in (b"none", "none"):
            problems.append(f"ScatterND node {node.name!r}: reduction other than 'none' is not supported")
        if op == "Resize":
            mode = attrs.get("coordinate_transformation_mode", b"half_pixel")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            if mode not in _RESIZE_MODES:
                problems.append(f"Resize node {node.name!r}: coordinate_transformation_mode {mode!r} is not supported")
            if attrs.get("antialias", 0):
                problems.append(f"Resize node {node.name!r}: antialiasing is not supported")
        if op == "MaxPool" and any(x != 1 for x in attrs.get("dilations", [])):
            problems.append(f"MaxPool node {node.name!r}: dilations must be 1")
        if op.startswith("Reduce") and len(node.input) > 1 and node.input[1] and node.input[1] not in constants:
            problems.append(f"{op} node {node.name!r}: axes must be an initializer")
        if op in ("Squeeze", "Unsqueeze") and len(node.input) > 1 and node.input[1] not in constants:
            problems.append(f"{op} node {node.name!r}: axes must be constant")
    for op, n in sorted(unsupported.items()):
        problems.append(f"{op} ({n} node{'s' if n > 1 else ''}) is not supported by the TensorRT ONNX parser")
    io = graph_io(path)
    for spec in io["inputs"]:
        if spec["dtype"] == "int64":
            what = "token input" if spec["name"] in TOKEN_INPUTS else "input"
            problems.append(f"{what} {spec['name']!r} is int64; TensorRT engines should take int32")
        if spec["dtype"] not in ("float32", "float16", "bfloat16", "int32", "bool"):
            problems.append(f"input {spec['name']!r} has dtype {spec['dtype']}, which TensorRT does not take as an input")
    problems += check_profiles(io["inputs"], profiles)
    return {"compatible": not problems, "opset": opset, "opset_range": list(TRT_OPSET_RANGE),
            "reference": "onnx-tensorrt docs/operators.md (TensorRT 10.15)", "ops": dict(sorted(ops.items())),
            "problems": problems, "profiles": [p.get("name") for p in profiles]}
