"""Engines: what executes exported graphs (ONNX Runtime sessions, TensorRT engines).

Each engine wraps one graph file as a callable on torch tensors, so export validation and the
runtime drive it through a family's forward pass exactly like the PyTorch module it came from.
The engine libraries themselves (onnxruntime, tensorrt) are imported only when a graph is opened.
`cpu` says what the serving CPU can do; `int8_weights` fits int8 weights to it (7 bits without VNNI).
"""
from .onnxruntime import OrtGraph, session_options
from .tensorrt import TensorRTUnavailable, TrtGraph, TrtSettings, require_tensorrt

__all__ = ["OrtGraph", "TensorRTUnavailable", "TrtGraph", "TrtSettings", "require_tensorrt", "session_options"]
