"""Backends: where a model's graphs run. Each gives the family, its config and featurizer, and the
graphs as callables by name, so the family's forward pass drives them all alike (PyTorch modules,
ONNX Runtime sessions, TensorRT engines). Export directories are opened through `docunet.artifacts`
(manifest check) and `docunet.engines`; nothing here imports `docunet.export`."""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..artifacts import export_label, int8_weight_bits, is_checkpoint, is_export, source_checkpoint, verify_manifest
from ..checkpoint import load_checkpoint, load_tokenizer
from ..engines.cpu import CpuInfo, cpu_info
from ..engines.int8_weights import Int8RequantizeError, open_7bit
from ..engines.onnxruntime import OrtGraph
from ..engines.tensorrt import TensorRTUnavailable, TrtGraph, require_tensorrt
from ..models import family_of, load_config
from ..models.base import ModelFamily

BACKENDS = ("torch", "onnxruntime", "tensorrt")
INT8_WEIGHTS = ("auto", "as-exported", "w7")  # which int8 weights the onnxruntime backend serves: see served_int8_bits


class BackendUnavailable(RuntimeError):
    """The asked-for backend cannot run here; the message says what to install or export."""


@dataclass
class Backend:
    name: str  # e.g. "torch-fp32", "onnxruntime-int8"
    family: ModelFamily
    config: Any
    featurizer: Any
    graphs: dict[str, Callable]
    device: torch.device
    sync: Callable[[], None] = field(default=lambda: None)


def _autocast_wrap(fn: Callable, device: torch.device, dtype: torch.dtype | None) -> Callable:
    if dtype is None:
        return fn

    def run(*args):
        with torch.autocast(device.type, dtype=dtype):
            out = fn(*args)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    return run


def _sync_for(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def int8_fit_problem(manifest: dict, cpu: CpuInfo) -> str | None:
    """Why this export's int8 weights, served as they are, do not fit this CPU, or None when they do."""
    bits = int8_weight_bits(manifest)
    if bits is None:
        return None
    if bits == 8 and cpu.int8_weight_bits == 7:
        return (f"this export's 8-bit int8 weights saturate on this CPU ({cpu.describe()}, no VNNI): predictions "
                "shift (measured on AVX2: 10% fewer relations, dev F1 +0.5 to +0.8); int8_weights='auto' (the default) "
                "serves them requantized to 7 bits")
    if bits == 7 and cpu.int8_weight_bits == 8:
        return (f"this export has 7-bit int8 weights; this CPU ({cpu.describe()}) runs full 8-bit weights without "
                "saturating, and they measured 0.62 dev F1 better on AVX-512 VNNI + AMX: export with --int8-weight-bits 8 "
                "(the default; the runtime requantizes them where they do not fit)")
    return None


class Int8FitWarning(UserWarning):
    """An int8 export whose weight width does not fit the CPU serving it."""


def served_int8_bits(manifest: dict, cpu: CpuInfo, device: str = "cpu", int8_weights: str = "auto") -> int | None:
    """The int8 weight width the onnxruntime backend serves (None: no int8 weights). `int8_weights`:
    "auto" serves 8-bit weights as 7-bit ones on CPUs where they saturate (no VNNI; not on GPUs),
    "as-exported" the file's weights, "w7" 7-bit weights on any CPU (to measure what they cost)."""
    if int8_weights not in INT8_WEIGHTS:
        raise ValueError(f"unknown int8_weights {int8_weights!r}; choose from {', '.join(INT8_WEIGHTS)}")
    bits = int8_weight_bits(manifest)
    if bits is None or int8_weights == "as-exported":
        return bits
    if int8_weights == "w7" or (cpu.int8_weight_bits == 7 and not device.startswith("cuda")):
        return min(bits, 7)
    return bits


def _ort_graphs(model_dir: Path, manifest: dict, threads: int | None, providers: list[str], served_bits: int | None,
                int8_weights: str) -> tuple[dict[str, OrtGraph], int | None]:
    """The export's graphs in ONNX Runtime sessions with `served_bits` int8 weights (requantized in memory
    when the file's are wider); falls back to the file's weights, with a warning, when they cannot be
    requantized and the width was not asked for by name. Returns the graphs and the width served."""
    files = {name: model_dir / g["file"] for name, g in manifest["graphs"].items()}
    bits = int8_weight_bits(manifest)
    if served_bits == bits:
        return {name: OrtGraph(f, threads, providers) for name, f in files.items()}, bits
    try:
        return {name: open_7bit(f, threads, providers)[0] for name, f in files.items()}, served_bits
    except Int8RequantizeError as exc:
        if int8_weights == "w7":
            raise BackendUnavailable(f"{model_dir}: cannot serve 7-bit weights: {exc}") from exc
        warnings.warn(f"{int8_fit_problem(manifest, cpu_info())}, but they cannot be requantized ({exc}): served as exported",
                      Int8FitWarning, stacklevel=3)
        return {name: OrtGraph(f, threads, providers) for name, f in files.items()}, bits


def torch_backend(model_dir: Path, device: str = "cpu", precision: str = "fp32", attention: str = "sdpa") -> Backend:
    """The PyTorch model from a checkpoint directory (or the checkpoint an export came from).

    precision: fp32, bf16 or fp16 autocast. attention: "sdpa" (fused attention) or "eager" (the
    family's eager reference: how the original code runs, for benchmarks).
    """
    model_dir = Path(model_dir)
    if not is_checkpoint(model_dir) and is_export(model_dir):
        src_path = source_checkpoint(model_dir)
        if not is_checkpoint(src_path):
            raise BackendUnavailable(f"{model_dir}: the torch backend needs the source checkpoint, which is not at {src_path}")
        model_dir = src_path
    dev = torch.device(device)
    model, featurizer = load_checkpoint(model_dir, dev)
    family = family_of(model.config)
    if attention == "eager":
        family.eager_reference(model)
    if precision == "auto":  # bf16 where the CPU multiplies it natively (AMX), fp32 elsewhere (and on GPUs: fp32)
        precision = "bf16" if dev.type == "cpu" and cpu_info().bf16 else "fp32"
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    name = f"torch-{precision}" + ("-eager" if attention == "eager" else "")
    graphs = {k: _autocast_wrap(g, dev, dtype) for k, g in family.graphs(model).items()}
    return Backend(name, family, model.config, featurizer, graphs, dev, _sync_for(dev))


def _open_export(model_dir: Path) -> tuple[dict, Any, ModelFamily, Any]:
    """(manifest, config, family, featurizer) of a verified export directory."""
    manifest = verify_manifest(model_dir)
    config = load_config(model_dir / manifest["config_file"])
    family = family_of(config)
    return manifest, config, family, family.make_featurizer(load_tokenizer(model_dir), config)


def onnxruntime_backend(model_dir: Path, device: str = "cpu", threads: int | None = None, int8_weights: str = "auto") -> Backend:
    """The exported graphs in ONNX Runtime (CPU; CUDA / TensorRT execution providers where installed).
    int8 exports are served with weights that fit this CPU (`served_int8_bits`); the name says the
    width served (`-w7from8` for 8-bit weights requantized at load)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable("onnxruntime is not installed: pip install 'docunet[onnx]'") from exc
    model_dir = Path(model_dir)
    if not is_export(model_dir):
        raise BackendUnavailable(f"{model_dir}: no manifest.json; export the checkpoint first: docunet-export --checkpoint {model_dir} --out DIR")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        available = ort.get_available_providers()
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if not wanted:
            raise BackendUnavailable("onnxruntime has no CUDA provider here: pip install onnxruntime-gpu")
        providers = wanted + providers
    manifest, config, family, featurizer = _open_export(model_dir)
    cpu = cpu_info()
    served = served_int8_bits(manifest, cpu, device, int8_weights)
    problem = int8_fit_problem(manifest, cpu)
    if problem and served == int8_weight_bits(manifest) and int8_weights != "w7" and not device.startswith("cuda"):
        warnings.warn(problem, Int8FitWarning, stacklevel=2)
    graphs, served = _ort_graphs(model_dir, manifest, threads, providers, served, int8_weights)
    # on a GPU the batch tensors live on it and are bound in place (IO binding): outputs stay on the device
    dev = torch.device(device) if device.startswith("cuda") else torch.device("cpu")
    return Backend(f"onnxruntime-{export_label(manifest, served)}", family, config, featurizer, graphs, dev, _sync_for(dev))


def tensorrt_backend(model_dir: Path, device: str = "cuda") -> Backend:
    """TensorRT engines built by `docunet-export --tensorrt`, fed torch CUDA tensors (no host round trip)."""
    try:
        require_tensorrt()
    except TensorRTUnavailable as exc:
        raise BackendUnavailable(str(exc)) from exc
    if not device.startswith("cuda"):
        raise BackendUnavailable("the tensorrt backend runs on a CUDA device: --device cuda")
    model_dir = Path(model_dir)
    manifest, config, family, featurizer = _open_export(model_dir)
    built = (manifest.get("tensorrt") or {}).get("engines") or {}
    engines = built.get("engines") or {}  # build_engines(): {"tensorrt_version", ..., "engines": {graph: {...}}}
    missing = sorted(set(manifest["graphs"]) - set(engines))
    if missing:
        raise BackendUnavailable(f"{model_dir}: no TensorRT engines for {', '.join(missing)}; build them with docunet-export --tensorrt")
    graphs = {name: TrtGraph(model_dir / engines[name]["file"], device) for name in manifest["graphs"]}
    return Backend(f"tensorrt-{export_label(manifest)}", family, config, featurizer, graphs, torch.device(device), torch.cuda.synchronize)


def load_backend(model_dir: Path, backend: str = "auto", device: str = "cpu", precision: str | None = None,
                 threads: int | None = None, attention: str = "sdpa", int8_weights: str = "auto") -> Backend:
    """Open a model directory with the asked-for backend.

    "auto" takes the fastest path for this machine that keeps dev F1 within 0.5 of fp32: TensorRT engines
    on a GPU; else an export in ONNX Runtime, int8 ones with weights that fit this CPU (`served_int8_bits`;
    MiniLM exports measured within 0.1 F1 of fp32 on AVX2 with 7-bit weights and on AMX with 8-bit ones;
    7-bit weights requantized from 8 at load are to be measured, benchmarks/int8_fit.sh);
    else the checkpoint in torch with precision "auto" (bf16 on CPUs with AMX: 2.35x fp32 eager there; its
    F1 is not measured yet, benchmarks/int8_fit.sh reports it).
    `precision` (torch): fp32, bf16, fp16 or auto; None is auto under the auto backend and fp32 when the
    torch backend is named. `int8_weights` (onnxruntime): auto, as-exported or w7 (`served_int8_bits`)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    if threads:
        torch.set_num_threads(threads)
    if backend == "auto":
        if is_export(model_dir):
            if device.startswith("cuda"):
                with contextlib.suppress(BackendUnavailable):
                    return tensorrt_backend(model_dir, device)
            with contextlib.suppress(BackendUnavailable):
                return onnxruntime_backend(model_dir, device, threads, int8_weights)
        return torch_backend(model_dir, device, precision or "auto", attention)
    if backend == "torch":
        return torch_backend(model_dir, device, precision or "fp32", attention)
    if backend == "onnxruntime":
        return onnxruntime_backend(model_dir, device, threads, int8_weights)
    if backend == "tensorrt":
        return tensorrt_backend(model_dir, device)
    raise ValueError(f"unknown backend {backend!r}; choose from auto, {', '.join(BACKENDS)}")
