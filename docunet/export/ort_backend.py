"""ONNX Runtime sessions as encoder / head callables for `docunet.modeling.run_docunet`.

`OrtEncoder` and `OrtHead` take and return torch tensors exactly like `model.encoder` and
`model.head`, so the host side (window merge, pooling, grid padding) is the one the PyTorch model
uses. `load_exported` opens an export directory after checking it against its manifest.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
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
                 optimization: str = "all", io_binding: bool = False):
        """`io_binding=True` always binds torch tensors' memory (as CUDA tensors always are), not only on GPUs."""
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such ONNX graph")
        self.session = ort.InferenceSession(str(self.path), session_options(threads, optimization),
                                            providers=list(providers) if providers else ["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_dtypes = [_NUMPY_OF_ORT.get(i.type) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = [i.shape for i in self.session.get_inputs()]
        self.output_shapes = [o.shape for o in self.session.get_outputs()]
        self.output_dtypes = [_NUMPY_OF_ORT.get(o.type) for o in self.session.get_outputs()]
        self.io_binding = io_binding

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


class OrtEncoder(OrtGraph):
    """(input_ids [W,T], attention_mask [W,T], query_pos [W,Q]) -> (states [W,T,d], query_attn [W,H,Q,T])."""

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, query_pos: torch.Tensor):
        states, attn = self.run_torch(input_ids, attention_mask, query_pos)
        return states.float(), attn.float()


class OrtHead(OrtGraph):
    """(token_states [B,L,d], entity_emb [B,N,d], entity_attn [B,N,H,L], entity_mask [B,N]) -> logits [B,N,N,R]."""

    def __call__(self, token_states: torch.Tensor, entity_emb: torch.Tensor, entity_attn: torch.Tensor,
                 entity_mask: torch.Tensor) -> torch.Tensor:
        (logits,) = self.run_torch(token_states, entity_emb, entity_attn, entity_mask.bool())
        return logits.float()


@dataclass
class ExportedModel:
    """An opened export directory: config, featurizer, the two ONNX Runtime callables and the manifest."""

    directory: Path
    manifest: dict
    config: object  # DocuNetConfig
    featurizer: object  # Featurizer
    encoder: OrtEncoder
    head: OrtHead


def load_exported(directory: str | Path, threads: int | None = None, providers: Sequence[str] | None = None,
                  verify: bool = True) -> ExportedModel:
    """Open a `docunet-export` directory; refuses (ManifestError) one whose files do not match its manifest."""
    from transformers import AutoTokenizer

    from ..config import DocuNetConfig
    from ..featurize import Featurizer
    from .manifest import MANIFEST_FILE, verify_manifest

    directory = Path(directory)
    manifest = verify_manifest(directory) if verify else json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    config = DocuNetConfig.load(directory / manifest["config_file"])
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    graphs = manifest["graphs"]
    return ExportedModel(directory, manifest, config, Featurizer(tokenizer, config),
                         OrtEncoder(directory / graphs["encoder"]["file"], threads, providers),
                         OrtHead(directory / graphs["head"]["file"], threads, providers))
