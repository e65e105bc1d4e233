"""Serving: `Runtime.load(model_dir).predict(documents)` over torch, ONNX Runtime or TensorRT."""
from .backends import Backend, BackendUnavailable, load_backend
from .runtime import BadInput, Prediction, Runtime

__all__ = ["Backend", "BackendUnavailable", "BadInput", "Prediction", "Runtime", "load_backend"]
