"""Serving: `Runtime.load(model_dir).predict(documents)` over torch, ONNX Runtime or TensorRT, and the
streaming reader and writer that `docunet-run` (and any other engine) puts around it."""
from .backends import Backend, BackendUnavailable, load_backend
from .runtime import DEFAULT_BATCH_SIZE, BadInput, Prediction, Runtime
from .writer import PredictionWriter, RunSummary, write_predictions

__all__ = ["Backend", "BackendUnavailable", "BadInput", "DEFAULT_BATCH_SIZE", "Prediction", "PredictionWriter", "RunSummary",
           "Runtime", "load_backend", "write_predictions"]
