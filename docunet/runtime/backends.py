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
from ..engines.onnxruntime import OrtGraph
from ..engines.tensorrt import TensorRTUnavailable, TrtGraph, require_tensorrt
from ..models import family_of, load_config
from ..models.base import ModelFamily

BACKENDS = ("torch", "onnxruntime", "tensorrt")


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
    """Why this export's int8 weights do not fit this CPU, or None when they do."""
    bits = int8_weight_bits(manifest)
    if bits is None:
        return None
    if bits == 8 and cpu.int8_weight_bits == 7:
        return (f"this export has 8-bit int8 weights, which saturate on this CPU ({cpu.describe()}, no VNNI): predictions "
                "shift (measured on AVX2: 10% fewer relations, dev F1 +0.5 to +0.8); export with --int8-weight-bits 7 "
                "for CPUs like this one")
    if bits == 7 and cpu.int8_weight_bits == 8:
        return (f"this export has 7-bit int8 weights; this CPU ({cpu.describe()}) runs full 8-bit weights without "
                "saturating, and they measured 0.62 dev F1 better on AVX-512 VNNI + AMX: export with --int8-weight-bits 8 "
                "for CPUs like this one")
    return None


class Int8FitWarning(UserWarning):
    """An int8 export whose weight width does not fit the CPU serving it."""


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


def onnxruntime_backend(model_dir: Path, device: str = "cpu", threads: int | None = None) -> Backend:
    """The exported graphs in ONNX Runtime (CPU; CUDA / TensorRT execution providers where installed)."""
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
    problem = int8_fit_problem(manifest, cpu_info())
    if problem and not device.startswith("cuda"):
        warnings.warn(problem, Int8FitWarning, stacklevel=2)
    graphs = {name: OrtGraph(model_dir / g["file"], threads, providers) for name, g in manifest["graphs"].items()}
    # on a GPU the batch tensors live on it and are bound in place (IO binding): outputs stay on the device
    dev = torch.device(device) if device.startswith("cuda") else torch.device("cpu")
    return Backend(f"onnxruntime-{export_label(manifest)}", family, config, featurizer, graphs, dev, _sync_for(dev))


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


def load_backend(model_dir: Path, backend: str = "auto", device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None, attention: str = "sdpa") -> Backend:
    """Open a model directory with the asked-for backend; "auto" takes the fastest one available."""
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
                return onnxruntime_backend(model_dir, device, threads)
        return torch_backend(model_dir, device, precision, attention)
    if backend == "torch":
        return torch_backend(model_dir, device, precision, attention)
    if backend == "onnxruntime":
        return onnxruntime_backend(model_dir, device, threads)
    if backend == "tensorrt":
        return tensorrt_backend(model_dir, device)
    raise ValueError(f"unknown backend {backend!r}; choose from auto, {', '.join(BACKENDS)}")
