"""Engines: graph files as callables on torch tensors, usable by the runtime without docunet.export."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from docunet.engines.onnxruntime import OrtGraph  # noqa: E402


def _two_output_graph(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "n"])
    ids = helper.make_tensor_value_info("ids", TensorProto.INT32, ["b", "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "n"])
    k = helper.make_tensor_value_info("k", TensorProto.INT32, ["b", "n"])
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Add", ["ids", "ids"], ["k"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, ids], [y, k]), opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return path


def test_ort_graph_is_called_like_a_module(tmp_path):
    g = OrtGraph(_two_output_graph(tmp_path / "g.onnx"), threads=1)
    x = torch.tensor([[-1.0, 2.0], [3.0, -4.0]])
    ids = torch.tensor([[1, 2], [3, 4]], dtype=torch.int64)  # converted to the graph's int32
    y, k = g(x, ids)
    assert torch.equal(y, x.clamp(min=0)) and y.dtype == torch.float32
    assert torch.equal(k, (2 * ids).to(torch.int32))
    bound = g.run_bound(x, ids)  # IO binding on the tensors' own memory: the same values
    assert bound is not None and torch.equal(bound[0], y) and torch.equal(bound[1], k)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        g.run_numpy(np.zeros((1, 1), np.float32))
    with pytest.raises(FileNotFoundError, match="no such ONNX graph"):
        OrtGraph(tmp_path / "missing.onnx")


def test_runtime_serves_an_export_without_importing_export(tmp_path, tokenizer):
    """The engines package is all the runtime needs: an exported model is opened and served in a fresh
    process in which no docunet.export module is ever imported."""
    pytest.importorskip("onnxruntime")
    from docunet.checkpoint import save_checkpoint
    from docunet.export import ExportOptions, export_checkpoint
    from tests.conftest import as_dict, synthetic_document, tiny_model

    model, _ = tiny_model(tokenizer, seed=3)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    export_checkpoint(ckpt, tmp_path / "export", ExportOptions(threads=1))
    docs = [as_dict(synthetic_document(random.Random(i), f"d{i}", n_pairs=2)) for i in range(3)]
    (tmp_path / "docs.json").write_text(json.dumps(docs))
    code = f"""
import json, sys
from docunet import Runtime
rt = Runtime.load({str(tmp_path / 'export')!r}, backend="onnxruntime", threads=1)
out = list(rt.predict(json.load(open({str(tmp_path / 'docs.json')!r}))))
assert rt.name == "onnxruntime-fp32" and all(p.ok for p in out), [p.error for p in out]
loaded = sorted(m for m in sys.modules if m.startswith("docunet."))
assert not [m for m in loaded if m.startswith("docunet.export")], loaded
assert "docunet.engines.onnxruntime" in loaded
print(len(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "3"
