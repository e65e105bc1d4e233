"""Smaller int8 exports (docunet.export.compact): quantized embedding tables, folded weight transposes and
weights shared between graphs, each run by ONNX Runtime against the plain graph."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from docunet.export.compact import (SHARED_WEIGHTS_FILE, dequantize_table_int4, fold_weight_transposes, quantize_embedding_tables,
                                    quantize_table_int4, quantize_table_int8, share_weights)
from docunet.export.int8 import quantize_dynamic_int8

RNG = np.random.default_rng(0)


def _lookup_graph(table: np.ndarray, opset: int = 18) -> onnx.ModelProto:
    """ids [B, T] -> Gather(table) + Gather(table)[reversed ids]: one table read by two Gathers."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
         helper.make_node("Gather", ["table", "ids2"], ["rows2"], axis=0),
         helper.make_node("Add", ["rows", "rows2"], ["out"])],
        "lookup", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "T"]),
                   helper.make_tensor_value_info("ids2", TensorProto.INT64, ["B", "T"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["B", "T", table.shape[1]])],
        [numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_tables_look_up_the_dequantized_rows(bits):
    table = RNG.normal(0, 0.05, (3000, 64)).astype(np.float32)
    table[7] = 0.0  # an all-zero row (scale 0) must come back as zeros
    ids = RNG.integers(0, 3000, (3, 11))
    ids[0, 0] = 7
    feeds = {"ids": ids, "ids2": ids[:, ::-1].copy()}
    model = _lookup_graph(table)
    info = quantize_embedding_tables(model, bits)
    assert [n.op_type for n in model.graph.node].count("Gather") >= 4 and "table" not in {t.name for t in model.graph.initializer}
    if bits == 8:
        q, s = quantize_table_int8(table)
        restored = q.astype(np.float32) * s
    else:
        restored = dequantize_table_int4(*quantize_table_int4(table))
    (out,) = _run(model, feeds)
    np.testing.assert_allclose(out, restored[ids] + restored[ids[:, ::-1]], atol=1e-6)
    assert np.all(out[0, 0] == restored[ids[0, -1]])  # the zero row added nothing
    # error bounds: half a step per value
    step = np.abs(table).max(1, keepdims=True) / 127 if bits == 8 else None
    if bits == 8:
        assert np.all(np.abs(restored - table) <= step / 2 + 1e-7)
    else:
        blocks = table.reshape(3000, 2, 32)
        half = ((blocks.max(2) - blocks.min(2)) / 15 / 2)[..., None]
        assert np.all(np.abs(restored.reshape(3000, 2, 32) - blocks) <= half * 1.01 + 2e-4)  # fp16 scale and minimum
    t = info["tables"]["table"]
    assert info["bits"] == bits and t["shape"] == [3000, 64] and t["bytes"] < t["fp32_bytes"] / (3 if bits == 8 else 6)


def test_small_tables_and_fp32_setting_are_left_alone():
    model = _lookup_graph(RNG.normal(size=(10, 8)).astype(np.float32))
    assert quantize_embedding_tables(model, 8)["tables"] == {}
    big = _lookup_graph(RNG.normal(size=(3000, 64)).astype(np.float32))
    assert quantize_embedding_tables(big, 32) == {"bits": 32, "tables": {}}
    with pytest.raises(ValueError, match="embedding bits"):
        quantize_embedding_tables(big, 6)
    with pytest.raises(ValueError, match="multiple of the 4-bit block"):
        quantize_table_int4(np.zeros((4, 40), np.float32))


def _shared_transpose_graph(w: np.ndarray) -> onnx.ModelProto:
    """Two MatMuls read one Transpose of a weight (as the span graph's keys and values do)."""
    d = w.shape[0]
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
         helper.make_node("MatMul", ["x", "wt"], ["a"]), helper.make_node("MatMul", ["y", "wt"], ["b"]),
         helper.make_node("Add", ["a", "b"], ["out"])],
        "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", d]), helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", d])], [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_folded_transposes_let_the_quantizer_see_shared_weights(tmp_path):
    w = RNG.normal(size=(32, 32)).astype(np.float32)
    feeds = {"x": RNG.normal(size=(5, 32)).astype(np.float32), "y": RNG.normal(size=(5, 32)).astype(np.float32)}
    model = _shared_transpose_graph(w)
    (before,) = _run(model, feeds)
    folded = _shared_transpose_graph(w)
    assert fold_weight_transposes(folded) == 1
    assert "Transpose" not in [n.op_type for n in folded.graph.node] and [t.name for t in folded.graph.initializer] == ["wt"]
    (after,) = _run(folded, feeds)
    np.testing.assert_array_equal(before, after)
    onnx.save(model, str(tmp_path / "fp32.onnx"))
    info = quantize_dynamic_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    assert info["folded_weight_transposes"] == 1 and info["quantized_nodes"] == 2
    ops = [n.op_type for n in onnx.load(str(tmp_path / "int8.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 2 and "Transpose" not in ops


def test_graphs_share_one_copy_of_equal_weights(tmp_path):
    big = RNG.normal(size=(64, 64)).astype(np.float32)
    feeds = {"x": RNG.normal(size=(3, 64)).astype(np.float32), "y": RNG.normal(size=(3, 64)).astype(np.float32)}
    a, b = _shared_transpose_graph(big), _shared_transpose_graph(big)
    b.graph.initializer.append(numpy_helper.from_array(RNG.normal(size=(64, 64)).astype(np.float32), "only_b"))
    b.graph.node.append(helper.make_node("MatMul", ["x", "only_b"], ["extra"]))
    b.graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 64]))
    expected = {"a.onnx": _run(a, feeds), "b.onnx": _run(b, feeds)}
    onnx.save(a, str(tmp_path / "a.onnx"))
    onnx.save(b, str(tmp_path / "b.onnx"))
    info = share_weights(tmp_path, ["a.onnx", "b.onnx"])
    assert info["tensors"] == 3 and info["distinct"] == 2 and info["bytes_after"] < info["bytes_before"] - 64 * 64 * 4 + 1024
    assert (tmp_path / SHARED_WEIGHTS_FILE).stat().st_size < 2 * 64 * 64 * 4 + 128
    for name, outs in expected.items():  # run from the directory: ONNX Runtime reads the shared file
        got = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"]).run(None, feeds)
        for x, y in zip(got, outs):
            np.testing.assert_array_equal(x, y)
    # nothing to share: nothing written
    other = tmp_path / "other"
    other.mkdir()
    onnx.save(_shared_transpose_graph(big), str(other / "c.onnx"))
    assert share_weights(other, ["c.onnx"]) == {} and not (other / SHARED_WEIGHTS_FILE).exists()
