"""int8 variants of exported fp32 graphs (for CPUs), chosen per graph by the export spec.

- "dynamic" (`quantize_dynamic_int8`): ONNX Runtime's dynamic quantization with int8 weights per
  output channel (per-tensor scales were measured to be too inaccurate for MiniLM); activations are
  quantized at run time. Used for transformer encoders.
- "static" (`quantize_static_int8`, with `--int8-head`): QDQ static int8 for every Conv and every
  MatMul/Gemm with a constant weight, calibrated on the graph's inputs from real documents; then
  dynamic int8 for bilinear layers (MatMuls that multiply an outer product by a constant weight),
  whose outer products of tanh outputs get a fixed scale.
Weights use all 8 bits unless `reduce_range` (7-bit weights, see `quantize_dynamic_int8`); on CPUs
where 8-bit weights saturate, the runtime requantizes them to 7 bits at load (`engines.int8_weights`).
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .compact import fold_weight_transposes


@contextlib.contextmanager
def quiet_root_logger(level: int = logging.ERROR):
    """ONNX Runtime's quantizer and optimizer log through the root logger (rule by rule, and advice to
    pre-process that does not apply here: its symbolic shape inference fails on these graphs)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


def quantize_dynamic_int8(src: Path, dst: Path, reduce_range: bool = False) -> dict:
    """Dynamic int8 quantization (per-channel weights) of every MatMul/Gemm with constant weights.

    `reduce_range` keeps the weights to 7 bits. x86 CPUs without VNNI (AVX2, plain AVX-512) multiply
    uint8 activations by int8 weights with VPMADDUBSW, whose pairwise int16 sums saturate with full
    8-bit weights; measured on MiniLM (Re-DocRED dev, AVX2): full range predicts 10% fewer relations
    than fp32 (dev F1 49.58 against 48.88, a shifted operating point), 7-bit weights 1-2% fewer (48.91).
    With VNNI or AMX, 8-bit weights are the accurate ones (7-bit cost 0.62 dev F1 there), so exports keep
    8 bits and the runtime requantizes them to 7 where they saturate (`engines.int8_weights`)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    folded = fold_weight_transposes(model)
    inits = {t.name for t in model.graph.initializer}
    targets = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits]
    with tempfile.TemporaryDirectory(prefix="docunet-int8-") as tmp, quiet_root_logger():
        if folded:
            src = Path(tmp) / "folded.onnx"
            onnx.save(model, str(src))
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, reduce_range=reduce_range,
                         weight_type=QuantType.QInt8, nodes_to_quantize=targets, extra_options={"MatMulConstBOnly": True})
    out = onnx.load(str(dst), load_external_data=False)
    ops = Counter(n.op_type for n in out.graph.node)
    return {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "int8", "per_channel": True,
            "reduce_range": reduce_range, "folded_weight_transposes": folded,
            "quantized_nodes": len(targets), "ops": {k: ops[k] for k in sorted(ops) if k in
                                                      ("DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul", "MatMul", "Gemm")}}


# ----------------------------------------------------------------------------------------------
# int8 head (optional): static quantization of the U-Net convolutions and the weight MatMuls,
# calibrated on head inputs computed from real documents
# ----------------------------------------------------------------------------------------------


def quantize_static_int8(src: Path, dst: Path, calibration: list[dict[str, np.ndarray]], reduce_range: bool = False) -> dict:
    """int8 head: QDQ static int8 with per-channel weights for every Conv and every MatMul/Gemm with a
    constant weight (the feature map's attention products and the output stay fp32), then dynamic int8
    for the grouped bilinear's MatMuls (`quantize_bilinear_int8`). `reduce_range`: 7-bit weights, as for
    dynamic int8 (`quantize_dynamic_int8`)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    inits = {t.name for t in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n for n in model.graph.node for o in n.output}
    targets = [n.name for n in model.graph.node
               if n.op_type == "Conv" or (n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and (n.input[1] in inits or n.input[1] in consts)
                                          and not _reads_outer_product(n, producer))]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self):
            return next(self._it, None)

    with quiet_root_logger():
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_quantize=targets,
                        op_types_to_quantize=["Conv", "MatMul", "Gemm"])
    bilinear, fixed_scale = quantize_bilinear_int8(dst, dst, reduce_range)
    out = onnx.load(str(dst), load_external_data=False)
    ops = Counter(n.op_type for n in out.graph.node)
    return {"method": "onnxruntime.quantization.quantize_static (QDQ, per-channel weights, uint8 activations); "
                      "grouped bilinear: quantize_dynamic (per-channel int8 weights), outer products of tanh outputs "
                      "with the fixed scale 1/127",
            "reduce_range": reduce_range, "calibration_batches": len(calibration), "quantized_nodes": len(targets) + bilinear,
            "bilinear_matmuls": bilinear, "bilinear_fixed_scale_inputs": fixed_scale,
            "ops": {k: ops[k] for k in sorted(ops) if k in ("QuantizeLinear", "DequantizeLinear", "Conv", "MatMul", "Gemm",
                                                           "DynamicQuantizeLinear", "MatMulInteger")}}


def _reads_outer_product(node: onnx.NodeProto, producer: dict) -> bool:
    """A node of the grouped bilinear (its MatMul/Gemm, or the quantizer of its input): its first input
    is a Reshape of an outer product (Mul)."""
    reshape = producer.get(node.input[0])
    return reshape is not None and reshape.op_type == "Reshape" and getattr(producer.get(reshape.input[0]), "op_type", "") == "Mul"


def _gemm_as_matmul_add(gemm: onnx.NodeProto) -> list[onnx.NodeProto]:
    """A plain Gemm (no transposes, alpha = beta = 1) as MatMul (same name) + Add; [] for any other Gemm.
    quantize_dynamic renames the Gemm nodes it rewrites, so `nodes_to_quantize` could not name them."""
    attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
    if (attrs.get("transA", 0), attrs.get("transB", 0), attrs.get("alpha", 1.0), attrs.get("beta", 1.0)) != (0, 0, 1.0, 1.0):
        return []
    if len(gemm.input) < 3 or not gemm.input[2]:
        return [helper.make_node("MatMul", list(gemm.input[:2]), [gemm.output[0]], name=gemm.name)]
    product = gemm.output[0] + "_matmul"
    return [helper.make_node("MatMul", list(gemm.input[:2]), [product], name=gemm.name),
            helper.make_node("Add", [product, gemm.input[2]], [gemm.output[0]], name=gemm.name + "_bias")]


def quantize_bilinear_int8(src: Path, dst: Path, reduce_range: bool = False) -> tuple[int, int]:
    """Dynamic int8 (per-channel weights, activations quantized at run time) for the grouped bilinear's
    MatMuls: the ones that multiply an outer product (Reshape of a Mul) by a constant weight.

    The exported graph computes each group's weight slice (Gather + Transpose of the bilinear weight),
    so ONNX Runtime's basic optimizations (constant folding; standard ONNX ops only) first turn the
    slices into initializers. About a quarter less time for the bilinear, the head's largest part,
    on AVX2 CPUs. Returns the number of MatMuls quantized (0: the graph is left as it is) and how many
    of their inputs have a fixed scale (`_fixed_scale_outer_products`)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="docunet-bilinear-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded))
        inits = {t.name for t in model.graph.initializer}
        producer = {o: n for n in model.graph.node for o in n.output}
        targets, nodes = [], []
        for n in model.graph.node:
            if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits and _reads_outer_product(n, producer):
                as_matmul = [n] if n.op_type == "MatMul" else _gemm_as_matmul_add(n)
                if as_matmul:
                    nodes += as_matmul
                    targets.append(n.name)
                    continue
            nodes.append(n)
        if not targets:
            return 0, 0
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        onnx.save(model, str(folded))
        with quiet_root_logger():
            quantize_dynamic(str(folded), str(dst), op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8,
                             reduce_range=reduce_range,
                             nodes_to_quantize=targets, extra_options={"MatMulConstBOnly": True})
    quantized = onnx.load(str(dst))
    fixed = _fixed_scale_outer_products(quantized)
    if fixed:
        onnx.save(quantized, str(dst))
    return len(targets), fixed


# values that only shape ops (no arithmetic) separate from their source
_SHAPE_OPS = {"Reshape", "Unsqueeze", "Squeeze", "Gather", "Slice", "Split", "Transpose", "Flatten", "Identity"}


def _comes_from(name: str, op: str, producer: dict) -> bool:
    node = producer.get(name)
    while node is not None and node.op_type in _SHAPE_OPS:
        node = producer.get(node.input[0])
    return node is not None and node.op_type == op


def _fixed_scale_outer_products(model: onnx.ModelProto) -> int:
    """Quantize the bilinear's outer products with a fixed scale instead of one computed per call.

    Both factors are tanh outputs, so every entry of z_s z_o^T lies in [-1, 1]: uint8 with scale 1/127
    and zero point 128 covers that range exactly, and it saves the pass over the (pairs x 4096) tensor
    that DynamicQuantizeLinear makes to find its range (about a sixth of the bilinear's time on 2 AVX2
    cores). Outer products whose factors are not tanh outputs keep dynamic quantization."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    nodes, changed = [], 0
    for n in graph.node:
        if (n.op_type == "DynamicQuantizeLinear" and _reads_outer_product(n, producer)
                and all(_comes_from(x, "Tanh", producer) for x in producer[producer[n.input[0]].input[0]].input)):
            if not changed:
                graph.initializer.extend([numpy_helper.from_array(np.array(1 / 127, np.float32), "outer_product_scale"),
                                          numpy_helper.from_array(np.array(128, np.uint8), "outer_product_zero_point")])
            nodes += [helper.make_node("QuantizeLinear", [n.input[0], "outer_product_scale", "outer_product_zero_point"], [n.output[0]],
                                       name=n.name + "_fixed_scale"),
                      helper.make_node("Identity", ["outer_product_scale"], [n.output[1]], name=n.name + "_scale"),
                      helper.make_node("Identity", ["outer_product_zero_point"], [n.output[2]], name=n.name + "_zero_point")]
            changed += 1
        else:
            nodes.append(n)
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)
    return changed
