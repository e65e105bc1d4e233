"""TensorRT: compatibility check of the ONNX graphs (always) and engine builds (when TensorRT imports).

Build (TensorRT 10.12+ and 11.x): strongly typed networks only, so precision comes from the ONNX
graph's own types (export fp16 graphs for fp16 engines); one optimization profile per
sequence-length bucket (encoder: window length; head: document length) with a batch range and,
for the head, a grid-size range; a persisted timing cache; one plan file per graph. Profiles are
recorded in the manifest and `TrtGraph` picks the first profile that covers a call's shapes.

Without TensorRT, `check_compatibility` checks a graph against the TensorRT ONNX parser's
documented support (onnx-tensorrt `docs/operators.md` for TensorRT 10.15: opsets 9 to 24, the
supported operators and their data types): the opset, every op and the type it reads, int32 token
inputs, the parser's documented restrictions that apply to these graphs, and that every dynamic
input dimension is covered by the planned optimization profiles.
"""
from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MIN_TENSORRT = (10, 12)
TRT_OPSET_RANGE = (9, 24)
INSTALL_HINT = (
    "TensorRT is not installed (or not importable) in this Python environment. --tensorrt needs TensorRT "
    "{need}+ with an NVIDIA GPU and driver: install it with `pip install \"tensorrt>=10.12\"` (NVIDIA's wheels "
    "come from pypi.nvidia.com: `pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12`, or "
    "tensorrt-cu13 for CUDA 13), or run inside NVIDIA's TensorRT container (nvcr.io/nvidia/tensorrt). "
    "Without --tensorrt the export still writes the ONNX graphs and checks them for TensorRT compatibility."
)


class TensorRTUnavailable(RuntimeError):
    """`tensorrt` cannot be imported (or is too old); the message says how to install it."""


def require_tensorrt(min_version: tuple[int, int] = MIN_TENSORRT, check_gpu: bool = False):
    """The `tensorrt` module, or TensorRTUnavailable with installation instructions. With `check_gpu`,
    also create a builder, which fails without a usable CUDA GPU and driver."""
    need = ".".join(map(str, min_version))
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or a broken install (missing CUDA libraries)
        raise TensorRTUnavailable(INSTALL_HINT.format(need=need) + f" [import error: {exc}]") from exc
    version = tuple(int(x) for x in str(getattr(trt, "__version__", "0.0")).split(".")[:2] if x.isdigit())
    if version < min_version:
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} is too old: strongly typed builds need TensorRT {need}+. "
                                  + INSTALL_HINT.format(need=need))
    if check_gpu:
        try:
            builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        except Exception as exc:
            builder, error = None, exc
        else:
            error = None
        if builder is None:
            raise TensorRTUnavailable(f"TensorRT {trt.__version__} is installed but cannot create a builder: it needs an "
                                      f"NVIDIA GPU with a working CUDA driver ({error or 'no builder'})")
    return trt


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


@dataclass
class TrtSettings:
    """Optimization profiles and build options."""

    seq_buckets: tuple[int, ...] = (128, 256, 512)  # encoder window lengths: one profile per bucket
    doc_buckets: tuple[int, ...] = (512, 1024, 2048)  # head document lengths: one profile per bucket
    max_windows: int = 32  # encoder batch range [1, max_windows]
    opt_windows: int = 8
    max_docs: int = 16  # head batch range [1, max_docs]
    opt_docs: int = 4
    max_grid: int | None = None  # largest grid the head engine accepts (None: grid_size + 2 * grid_step)
    workspace_gb: float = 4.0
    optimization_level: int = 3
    tf32: bool = False  # off: fp32 engines reproduce the fp32 graphs
    timing_cache: str | None = None  # None: <out>/tensorrt/timing.cache


def _buckets(limits: tuple[int, ...], cap: int | None = None) -> list[tuple[int, int]]:
    his = sorted({min(int(x), cap) if cap else int(x) for x in limits})
    if cap and (not his or his[-1] < cap):
        his.append(cap)
    out, lo = [], 1
    for hi in his:
        if hi >= lo:
            out.append((lo, hi))
            lo = hi + 1
    return out


def plan_profiles(config, settings: TrtSettings) -> dict[str, list[dict]]:
    """Optimization profiles (min/opt/max per input) for the encoder and head graphs."""
    from .onnx_export import max_sequence_length

    d, H = config.hidden_size, config.num_heads
    n0 = config.grid_size
    n_max = settings.max_grid or (config.grid_size + 2 * config.grid_step)
    enc = []
    for lo, hi in _buckets(settings.seq_buckets, max_sequence_length(config)):
        w_opt = min(settings.opt_windows, settings.max_windows)
        tok = {"min": [1, lo], "opt": [w_opt, hi], "max": [settings.max_windows, hi]}
        enc.append({"name": f"seq {lo}-{hi}", "inputs": {
            "input_ids": tok, "attention_mask": dict(tok),
            "query_pos": {"min": [1, 1], "opt": [w_opt, min(hi, 64)], "max": [settings.max_windows, hi]}}})
    head = []
    for lo, hi in _buckets(settings.doc_buckets):
        b_opt = min(settings.opt_docs, settings.max_docs)
        b = (1, b_opt, settings.max_docs)
        L = (lo, hi, hi)
        N = (4, n0, max(n0, n_max))  # from 4: the runtime's grid_fit option pads small documents less
        head.append({"name": f"doc_len {lo}-{hi}", "inputs": {
            "token_states": {k: [b[i], L[i], d] for i, k in enumerate(("min", "opt", "max"))},
            "entity_emb": {k: [b[i], N[i], d] for i, k in enumerate(("min", "opt", "max"))},
            "entity_attn": {k: [b[i], N[i], H, L[i]] for i, k in enumerate(("min", "opt", "max"))},
            "entity_mask": {k: [b[i], N[i]] for i, k in enumerate(("min", "opt", "max"))}}})
    return {"encoder": enc, "head": head}


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
    import onnx

    from .manifest import graph_io

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


# ----------------------------------------------------------------------------------------------
# Engine build (TensorRT 10.12+ / 11.x)
# ----------------------------------------------------------------------------------------------
def _parser_error(err) -> str:
    parts = [err.desc() if hasattr(err, "desc") else str(err)]
    for attr in ("node_name", "node_operator"):
        fn = getattr(err, attr, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                parts.append(f"{attr}={fn()}")
    return " ".join(parts)


def _network_flags(trt) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 1 << int(flag) if flag is not None else 0  # 11.x: always strongly typed (the flag is accepted, ignored)


def build_engine(trt, onnx_path: Path, plan_path: Path, profiles: list[dict], settings: TrtSettings,
                 timing_cache: Path, logger=None) -> dict:
    """Parse one ONNX graph into a strongly typed network and build its plan file with the given profiles."""
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"{onnx_path}: the TensorRT ONNX parser failed: " + " | ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_gb * (1 << 30)))
    if hasattr(config, "builder_optimization_level"):
        config.builder_optimization_level = settings.optimization_level
    tf32 = getattr(trt.BuilderFlag, "TF32", None)
    if tf32 is not None and not settings.tf32:
        config.clear_flag(tf32)
    cache_bytes = timing_cache.read_bytes() if timing_cache.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    net_inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    for prof in profiles:
        p = builder.create_optimization_profile()
        for name, shapes in prof["inputs"].items():
            if name not in net_inputs:
                raise RuntimeError(f"{onnx_path}: profile {prof['name']!r} names input {name!r}, the network has {sorted(net_inputs)}")
            p.set_shape(name, tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
        config.add_optimization_profile(p)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path}: TensorRT could not build an engine (see the TensorRT log above)")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(plan))
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"build_seconds": round(time.perf_counter() - t0, 3), "bytes": plan_path.stat().st_size}


def build_engines(out_dir: Path, graphs: dict[str, str], profiles: dict[str, list[dict]], settings: TrtSettings,
                  progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Build `tensorrt/<role>.plan` for every graph; the timing cache is reused and saved after each build."""
    trt = require_tensorrt()
    out_dir = Path(out_dir)
    cache = Path(settings.timing_cache) if settings.timing_cache else out_dir / "tensorrt" / "timing.cache"
    engines = {}
    for i, (role, file) in enumerate(graphs.items()):
        plan = out_dir / "tensorrt" / f"{Path(file).stem}.plan"
        info = build_engine(trt, out_dir / file, plan, profiles[role], settings, cache)
        engines[role] = {"file": plan.relative_to(out_dir).as_posix(), "graph": file, "profiles": profiles[role], **info}
        if progress:
            progress("build TensorRT engines", i + 1, len(graphs))
    return {"tensorrt_version": trt.__version__, "strongly_typed": True, "timing_cache": str(cache), "engines": engines}


class TrtGraph:
    """A TensorRT plan as a callable on torch tensors (CUDA), choosing the first profile that fits the inputs."""

    def __init__(self, plan_path: Path, device: str = "cuda"):
        import torch

        trt = require_tensorrt()
        self.trt, self.torch = trt, torch
        self.device = torch.device(device)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{plan_path}: TensorRT could not deserialize this engine (another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.stream = torch.cuda.Stream(self.device)
        self._profile = -1

    def _dtype(self, name: str):
        import numpy as np

        return self.torch.from_numpy(np.zeros(0, dtype=self.trt.nptype(self.engine.get_tensor_dtype(name)))).dtype

    def _pick_profile(self, shapes: dict[str, tuple]) -> int:
        for p in range(self.engine.num_optimization_profiles):
            ok = True
            for name, shape in shapes.items():
                lo, _, hi = self.engine.get_tensor_profile_shape(name, p)
                if len(lo) != len(shape) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
                    ok = False
                    break
            if ok:
                return p
        raise ValueError(f"no optimization profile of this engine covers the input shapes {shapes}")

    def run(self, *tensors):
        torch = self.torch
        home = tensors[0].device
        feeds = {n: t.to(self.device, self._dtype(n)).contiguous() for n, t in zip(self.inputs, tensors)}
        profile = self._pick_profile({n: tuple(t.shape) for n, t in feeds.items()})
        with torch.cuda.stream(self.stream):
            if profile != self._profile:
                self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
                self._profile = profile
            for n, t in feeds.items():
                self.context.set_input_shape(n, tuple(t.shape))
                self.context.set_tensor_address(n, t.data_ptr())
            outs = {}
            for n in self.outputs:
                outs[n] = torch.empty(tuple(self.context.get_tensor_shape(n)), dtype=self._dtype(n), device=self.device)
                self.context.set_tensor_address(n, outs[n].data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
        self.stream.synchronize()
        return [outs[n].float().to(home) for n in self.outputs]


class TrtEncoder(TrtGraph):
    def __call__(self, input_ids, attention_mask, query_pos):
        states, attn = self.run(input_ids, attention_mask, query_pos)
        return states, attn


class TrtHead(TrtGraph):
    def __call__(self, token_states, entity_emb, entity_attn, entity_mask):
        (logits,) = self.run(token_states, entity_emb, entity_attn, entity_mask)
        return logits
