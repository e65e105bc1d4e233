"""Backends: where the encoder and head run. Each gives the featurizer, the config and two callables
with the signatures of `DocuNetEncoder` / `DocuNetHead`, so `run_docunet` drives them all alike."""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import DocuNetConfig
from ..featurize import Featurizer

BACKENDS = ("torch", "onnxruntime", "tensorrt")


class BackendUnavailable(RuntimeError):
    """The asked-for backend cannot run here; the message says what to install or export."""


@dataclass
class Backend:
    name: str  # e.g. "torch-fp32", "onnxruntime-int8"
    config: DocuNetConfig
    featurizer: Featurizer
    encoder: Callable
    head: Callable
    device: torch.device
    sync: Callable[[], None] = field(default=lambda: None)


def export_label(manifest: dict) -> str:
    """fp32, fp16, int8 (encoder only) or int8-all (encoder and head), from an export manifest, with
    `-fused` when the encoder carries ONNX Runtime's fusions."""
    precision = manifest.get("precision", "fp32")
    head = manifest.get("graphs", {}).get("head", {}).get("precision")
    label = "int8-all" if precision == "int8" and head == "int8" else precision
    fused = manifest.get("precision_details", {}).get("encoder_fusion", {}).get("fused")
    return f"{label}-fused" if fused else label


def is_checkpoint(path: Path) -> bool:
    return (Path(path) / "model.safetensors").exists() and (Path(path) / "config.json").exists()


def is_export(path: Path) -> bool:
    return (Path(path) / "manifest.json").exists()


def _autocast_wrap(fn: Callable, device: torch.device, dtype: torch.dtype | None) -> Callable:
    if dtype is None:
        return fn

    def run(*args):
        with torch.autocast(device.type, dtype=dtype):
            out = fn(*args)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    return run


def torch_backend(model_dir: Path, device: str = "cpu", precision: str = "fp32", attention: str = "sdpa") -> Backend:
    """The PyTorch model from a checkpoint directory (or the checkpoint an export came from).

    precision: fp32, bf16 or fp16 autocast. attention: "sdpa" (fused attention, exact last-layer
    rows recomputed) or "eager" (every layer returns probabilities: how the original code runs).
    """
    from ..checkpoint import load_checkpoint
    from ..modeling import DocuNetEncoder

    model_dir = Path(model_dir)
    if not is_checkpoint(model_dir) and is_export(model_dir):
        source = json.loads((model_dir / "manifest.json").read_text()).get("source_checkpoint", {})
        src_path = Path(source.get("path", "")) if isinstance(source, dict) else Path(str(source))
        if not is_checkpoint(src_path):
            raise BackendUnavailable(f"{model_dir}: the torch backend needs the source checkpoint, which is not at {src_path}")
        model_dir = src_path
    dev = torch.device(device)
    model, featurizer = load_checkpoint(model_dir, dev)
    if attention == "eager":
        model.encoder = DocuNetEncoder(model.encoder.transformer, all_layer_attentions=True)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    name = f"torch-{precision}" + ("-eager" if attention == "eager" else "")
    return Backend(name, model.config, featurizer, _autocast_wrap(model.encoder, dev, dtype),
                   _autocast_wrap(model.head, dev, dtype), dev, sync)


def onnxruntime_backend(model_dir: Path, device: str = "cpu", threads: int | None = None) -> Backend:
    """The exported graphs in ONNX Runtime (CPU; CUDA / TensorRT execution providers where installed)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable("onnxruntime is not installed: pip install 'docunet[onnx]'") from exc
    from ..export.ort_backend import load_exported

    if not is_export(model_dir):
        raise BackendUnavailable(f"{model_dir}: no manifest.json; export the checkpoint first: docunet-export --checkpoint {model_dir} --out DIR")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        available = ort.get_available_providers()
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if not wanted:
            raise BackendUnavailable("onnxruntime has no CUDA provider here: pip install onnxruntime-gpu")
        providers = wanted + providers
    exported = load_exported(model_dir, threads=threads, providers=providers)
    # on a GPU the batch tensors live on it and are bound in place (IO binding): encoder outputs stay
    # on the device for window merge, pooling and the head
    dev = torch.device(device) if device.startswith("cuda") else torch.device("cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    return Backend(f"onnxruntime-{export_label(exported.manifest)}", exported.config, exported.featurizer, exported.encoder, exported.head,
                   dev, sync)


def tensorrt_backend(model_dir: Path, device: str = "cuda") -> Backend:
    """TensorRT engines built by `docunet-export --tensorrt`, fed torch CUDA tensors (no host round trip)."""
    from ..export.tensorrt_build import TensorRTUnavailable, TrtEncoder, TrtHead, require_tensorrt

    try:
        require_tensorrt()
    except TensorRTUnavailable as exc:
        raise BackendUnavailable(str(exc)) from exc
    if not device.startswith("cuda"):
        raise BackendUnavailable("the tensorrt backend runs on a CUDA device: --device cuda")
    from transformers import AutoTokenizer

    from ..export.manifest import verify_manifest

    model_dir = Path(model_dir)
    manifest = verify_manifest(model_dir)
    built = (manifest.get("tensorrt") or {}).get("engines") or {}
    engines = built.get("engines") or {}  # build_engines(): {"tensorrt_version", ..., "engines": {role: {...}}}
    if not {"encoder", "head"} <= set(engines):
        raise BackendUnavailable(f"{model_dir}: no TensorRT engines; build them with docunet-export --tensorrt")
    config = DocuNetConfig.load(model_dir / manifest["config_file"])
    featurizer = Featurizer(AutoTokenizer.from_pretrained(str(model_dir)), config)
    dev = torch.device(device)
    return Backend(f"tensorrt-{export_label(manifest)}", config, featurizer,
                   TrtEncoder(model_dir / engines["encoder"]["file"], device), TrtHead(model_dir / engines["head"]["file"], device),
                   dev, torch.cuda.synchronize)


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
