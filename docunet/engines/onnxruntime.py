"""ONNX Runtime sessions as graph callables: torch tensors in, torch tensors out.

An `OrtGraph` is called like the PyTorch module it was exported from, so a family's forward pass
(`ModelFamily.run`) drives it exactly as it drives the PyTorch model. On CUDA (or with
`io_binding=True`) ONNX Runtime reads and writes the torch tensors' memory in place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

_NUMPY_OF_ORT = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
}
_TORCH_OF_NUMPY = {np.float32: torch.float32, np.float16: torch.float16, np.int32: torch.int32, np.int64: torch.int64,
                   np.bool_: torch.bool}


def session_options(threads: int | None = None, optimization: str = "all"):
    """Session options: intra-op threads (None: ORT's default), no spinning, full graph optimisation."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to torch ops
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    so.log_severity_level = 3
    return so


class OrtGraph:
    """One ONNX graph in an `onnxruntime.InferenceSession`, fed and read as torch tensors."""

    def __init__(self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None,
                 optimization: str = "all", io_binding: bool = False, model: bytes | None = None):
        """`io_binding=True` always binds torch tensors' memory (as CUDA tensors always are), not only on GPUs.
        `model`: the serialized graph to run instead of the file at `path` (a graph changed in memory, e.g.
        requantized weights, while the export's hashed file stays as it is); `path` still names it."""
        import onnxruntime as ort

        self.path = Path(path)
        if model is None and not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such ONNX graph")
        self.session = ort.InferenceSession(model if model is not None else str(self.path), session_options(threads, optimization),
                                            providers=list(providers) if providers else ["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_dtypes = [_NUMPY_OF_ORT.get(i.type) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = [i.shape for i in self.session.get_inputs()]
        self.output_shapes = [o.shape for o in self.session.get_outputs()]
        self.output_dtypes = [_NUMPY_OF_ORT.get(o.type) for o in self.session.get_outputs()]
        self.io_binding = io_binding

    def __call__(self, *tensors: torch.Tensor):
        """Outputs as float32 torch tensors (one tensor for a one-output graph, else a tuple)."""
        outs = [o.float() if o.is_floating_point() else o for o in self.run_torch(*tensors)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run_numpy(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if len(arrays) != len(self.input_names):
            raise ValueError(f"{self.path.name} takes {len(self.input_names)} inputs {self.input_names}, got {len(arrays)}")
        feeds = {name: (np.ascontiguousarray(a, dtype=dt) if dt is not None else a)
                 for name, dt, a in zip(self.input_names, self.input_dtypes, arrays)}
        return self.session.run(self.output_names, feeds)

    def run_torch(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Torch tensors in, torch tensors out on the same device. CUDA tensors are bound in place
        (IO binding: ONNX Runtime reads and writes torch's device memory, no host round trip)."""
        device = tensors[0].device
        if device.type == "cuda" or self.io_binding:
            outs = self.run_bound(*tensors)
            if outs is not None:
                return outs
        outs = self.run_numpy(*(t.detach().cpu().numpy() for t in tensors))
        return [torch.from_numpy(o).to(device) for o in outs]

    def output_shapes_for(self, tensors: Sequence[torch.Tensor]) -> list[tuple[int, ...]] | None:
        """Concrete output shapes from the inputs' (every symbolic output axis is an input axis), or None."""
        sizes: dict[str, int] = {}
        for spec, t in zip(self.input_shapes, tensors):
            for dim, size in zip(spec, t.shape):
                if isinstance(dim, str):
                    sizes[dim] = int(size)
        out = []
        for spec in self.output_shapes:
            if not all(isinstance(d, int) or d in sizes for d in spec):
                return None
            out.append(tuple(d if isinstance(d, int) else sizes[d] for d in spec))
        return out

    def run_bound(self, *tensors: torch.Tensor) -> list[torch.Tensor] | None:
        """Run with IO binding on the tensors' own memory; outputs are preallocated torch tensors."""
        shapes = self.output_shapes_for(tensors)
        if shapes is None or None in self.input_dtypes or None in self.output_dtypes:
            return None
        device = tensors[0].device
        kind, index = ("cuda", device.index or 0) if device.type == "cuda" else ("cpu", 0)
        inputs = [t.detach().to(device=device, dtype=_TORCH_OF_NUMPY[dt]).contiguous() for t, dt in zip(tensors, self.input_dtypes)]
        outputs = [torch.empty(s, dtype=_TORCH_OF_NUMPY[dt], device=device) for s, dt in zip(shapes, self.output_dtypes)]
        binding = self.session.io_binding()
        for name, dt, t in zip(self.input_names, self.input_dtypes, inputs):
            binding.bind_input(name, kind, index, dt, tuple(t.shape), t.data_ptr())
        for name, dt, t in zip(self.output_names, self.output_dtypes, outputs):
            binding.bind_output(name, kind, index, dt, tuple(t.shape), t.data_ptr())
        if kind == "cuda":
            torch.cuda.current_stream(device).synchronize()  # torch's writes land before ORT reads
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return outputs
