"""8-bit int8 weights requantized to 7 bits in memory (engines/int8_weights.py): weights, scales and
biases against an export made with 7-bit weights, outputs against fp32, and the graphs it refuses.

The graphs are small fp32 ones quantized here the way `docunet.export.int8` does (dynamic per-channel
MatMul; static QDQ Conv with an int32 bias), once with full 8-bit and once with 7-bit weights.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from docunet.engines.int8_weights import (  # noqa: E402
    Int8RequantizeError,
    open_7bit,
    requantize_to_7bit,
)
from docunet.engines.cpu import cpu_info  # noqa: E402
from docunet.engines.onnxruntime import OrtGraph  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 8, 6, 6)).astype(np.float32)  # 16 inputs: [N, C, H, W]


def _fp32_graph(path):
    """Conv (with bias) -> Relu -> Flatten -> MatMul -> Add: one weight of each quantization kind."""
    w_conv = numpy_helper.from_array(RNG.standard_normal((12, 8, 3, 3)).astype(np.float32) * 0.2, "w_conv")
    b_conv = numpy_helper.from_array(RNG.standard_normal(12).astype(np.float32) * 0.1, "b_conv")
    w_mm = numpy_helper.from_array(RNG.standard_normal((12 * 4 * 4, 24)).astype(np.float32) * 0.05, "w_mm")
    b_mm = numpy_helper.from_array(RNG.standard_normal(24).astype(np.float32) * 0.1, "b_mm")
    nodes = [helper.make_node("Conv", ["x", "w_conv", "b_conv"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]), helper.make_node("MatMul", ["f", "w_mm"], ["m"], name="matmul"),
             helper.make_node("Add", ["m", "b_mm"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 24])], [w_conv, b_conv, w_mm, b_mm])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _quantize(src, dst, reduce_range: bool, static: bool):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if not static:
        quantize_dynamic(str(src), str(dst), per_channel=True, reduce_range=reduce_range, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], extra_options={"MatMulConstBOnly": True})
        return dst

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": X[i:i + 4]} for i in range(0, len(X), 4)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    return dst


@pytest.fixture(scope="module", params=["dynamic", "static"])
def graphs(request, tmp_path_factory):
    """fp32, 8-bit and 7-bit int8 versions of the same graph (dynamic MatMul or static QDQ Conv)."""
    root = tmp_path_factory.mktemp(request.param)
    fp32 = _fp32_graph(root / "fp32.onnx")
    static = request.param == "static"
    return {"kind": request.param, "fp32": fp32, "w8": _quantize(fp32, root / "w8.onnx", False, static),
            "w7": _quantize(fp32, root / "w7.onnx", True, static)}


def _arrays(model) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _run(graph: OrtGraph) -> np.ndarray:
    return graph.run_numpy(X)[0]


def test_requantized_weights_match_a_7bit_export(graphs):
    """Same scales as ONNX Runtime's own 7-bit quantizer (absmax / 64), weights within one step of its
    (double rounding: about 1 in 8 differ), int32 biases rescaled with their scales."""
    w8 = onnx.load(str(graphs["w8"]))
    before = w8.SerializeToString()
    out, count = requantize_to_7bit(w8)
    assert w8.SerializeToString() == before  # the input model is not changed
    assert count == 1
    got, seven, eight = _arrays(out), _arrays(onnx.load(str(graphs["w7"]))), _arrays(w8)
    assert got.keys() == seven.keys()
    weights = [k for k, v in got.items() if v.dtype == np.int8 and np.abs(eight[k]).max() > 0]  # not the zero points
    assert len(weights) == 1 and np.abs(eight[weights[0]]).max() == 127  # the 8-bit export uses the full range
    q, q7 = got[weights[0]].astype(int), seven[weights[0]].astype(int)
    assert np.abs(q).max() <= 64 and np.abs(q - q7).max() <= 1 and 0.02 < np.mean(q != q7) < 0.25
    changed = [k for k in got if not np.array_equal(got[k], eight[k])]
    scales = [k for k in changed if got[k].dtype == np.float32]
    assert scales and all(np.allclose(got[k], seven[k], rtol=1e-6, atol=0) for k in scales)
    if graphs["kind"] == "static":  # the Conv's int32 bias: one step of the 7-bit export's at most
        (bias,) = [k for k in changed if got[k].dtype == np.int32]
        assert np.abs(got[bias].astype(np.int64) - seven[bias]).max() <= 1 and not np.array_equal(got[bias], eight[bias])
    again, none = requantize_to_7bit(out)  # 7-bit weights are left as they are
    assert none == 0 and again.SerializeToString() == out.SerializeToString()


def test_requantized_outputs_stay_as_close_to_fp32_as_a_7bit_export(graphs):
    """The requantized graph's error against fp32 is the 7-bit export's, within 25% (its extra rounding
    adds (64/127)^2 / 12 of a step's variance to the 1/12 of one rounding: 12% more RMS error)."""
    fp32 = _run(OrtGraph(graphs["fp32"], threads=1))
    served, count = open_7bit(graphs["w8"], threads=1)
    assert count == 1 and served.path == graphs["w8"]
    requantized, seven, eight = _run(served), _run(OrtGraph(graphs["w7"], threads=1)), _run(OrtGraph(graphs["w8"], threads=1))
    err = {name: float(np.sqrt(np.mean((y - fp32) ** 2))) for name, y in
           (("requantized", requantized), ("seven", seven), ("eight", eight))}
    assert err["requantized"] <= 1.25 * err["seven"], err
    if cpu_info().int8_weight_bits == 8 or graphs["kind"] == "dynamic":
        assert err["eight"] < err["seven"], err  # 8-bit weights are the accurate ones where they do not saturate
    else:  # x86 without VNNI: the static u8 x s8 kernel saturates int16 with 8-bit weights, why 7 bits are served there
        assert err["requantized"] < err["eight"], err
    assert not np.array_equal(requantized, eight)
    # against the 7-bit export: one step apart in 1/8 of the weights, a variance of 1/8 step^2, so 1.22x
    # the RMS of one rounding (1/12 step^2)
    assert float(np.sqrt(np.mean((requantized - seven) ** 2))) <= 1.5 * err["seven"], err


def test_graphs_it_cannot_requantize_are_refused(graphs):
    """A nonzero weight zero point, or a wide int8 tensor read by an op it does not know: an error, never
    a graph served half requantized."""
    model = onnx.load(str(graphs["w8"]))
    weight = next(t for t in model.graph.initializer if t.data_type == TensorProto.INT8 and np.abs(numpy_helper.to_array(t)).max() > 64)
    zero = next(n for n in model.graph.node if weight.name in n.input).input[3 if graphs["kind"] == "dynamic" else 2]
    asymmetric = onnx.ModelProto()
    asymmetric.CopyFrom(model)
    z = next(t for t in asymmetric.graph.initializer if t.name == zero)
    z.CopyFrom(numpy_helper.from_array(np.ones_like(numpy_helper.to_array(z)), zero))
    with pytest.raises(Int8RequantizeError, match="zero point"):
        requantize_to_7bit(asymmetric)
    model.graph.node.append(helper.make_node("Cast", [weight.name], ["weight_as_float"], to=TensorProto.FLOAT))
    with pytest.raises(Int8RequantizeError, match="Cast"):
        requantize_to_7bit(model)


def test_ort_graph_runs_a_graph_given_in_memory(graphs):
    """OrtGraph(path, model=bytes) runs the bytes (the file stays the named origin)."""
    from_file = _run(OrtGraph(graphs["w8"], threads=1))
    in_memory = OrtGraph(graphs["w8"], threads=1, model=graphs["w8"].read_bytes())
    assert in_memory.path == graphs["w8"] and np.array_equal(_run(in_memory), from_file)
    other = OrtGraph(graphs["w8"], threads=1, model=graphs["w7"].read_bytes())
    assert not np.array_equal(_run(other), from_file)
