"""TensorRT engines: builds (when TensorRT imports) and the engine wrapper the runtime calls.

Build (TensorRT 10.12+ and 11.x): strongly typed networks only, so precision comes from the ONNX
graph's own types (export fp16 graphs for fp16 engines); the optimization profiles come from the
model family's export spec (one per length bucket, with batch and shape ranges); a persisted
timing cache; one plan file per graph. Profiles are recorded in the manifest and `TrtGraph` picks
the first profile that covers a call's shapes. `tensorrt` itself is imported only when needed.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MIN_TENSORRT = (10, 12)
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


def buckets(limits: tuple[int, ...], cap: int | None = None) -> list[tuple[int, int]]:
    his = sorted({min(int(x), cap) if cap else int(x) for x in limits})
    if cap and (not his or his[-1] < cap):
        his.append(cap)
    out, lo = [], 1
    for hi in his:
        if hi >= lo:
            out.append((lo, hi))
            lo = hi + 1
    return out


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

    def __call__(self, *tensors):
        """Like the PyTorch module: one tensor for a one-output graph, else a tuple."""
        outs = self.run(*tensors)
        return outs[0] if len(outs) == 1 else tuple(outs)
