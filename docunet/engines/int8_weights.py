"""8-bit int8 weights requantized to 7 bits in memory, for CPUs without VNNI.

Those CPUs (AVX2, AVX-512 without VNNI) multiply uint8 activations by int8 weights with VPMADDUBSW,
whose int16 pair sums saturate once a weight exceeds 64 in magnitude (2 * 255 * 64 = 32640 < 32767);
see `engines.cpu`. An export keeps the full 8-bit weights, and the runtime maps them onto [-64, 64]
before the ONNX Runtime session is made, never touching the export's files (the manifest hashes them).

Each symmetric weight q8 (zero point 0, per channel or per tensor) becomes q7 = round(q8 * 64 / 127)
with scale * 127 / 64: the scale ONNX Runtime's own `reduce_range` picks (absmax / 64), so only the
double rounding differs from an export made with 7-bit weights (weights within 1 of it). Weights are
found where ONNX Runtime's quantizers put them: MatMulInteger's B (its scale in the Mul that follows),
DynamicQuantizeMatMul / MatMulIntegerToFloat's B, QLinearMatMul's b, and DequantizeLinear's int8
initializer (QDQ), whose Conv / Gemm bias (int32, scaled by input scale x weight scale) follows it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .onnxruntime import OrtGraph

if TYPE_CHECKING:  # onnx is optional (the [onnx] extra): imported when a graph is requantized
    import onnx

SEVEN_BIT_MAX, EIGHT_BIT_MAX = 64, 127
FACTOR = SEVEN_BIT_MAX / EIGHT_BIT_MAX  # q7 = round(q8 * FACTOR), scale7 = scale8 / FACTOR
_MAX_PROTO_BYTES = 2**31 - 1  # a session made from bytes holds the whole graph in one protobuf

# op type -> (weight input, its scale input, its zero point input); None: the scale is found downstream
_WEIGHT_INPUTS = {"DynamicQuantizeMatMul": (1, 2, 3), "MatMulIntegerToFloat": (1, 3, 5), "QLinearMatMul": (3, 4, 5),
                  "DequantizeLinear": (0, 1, 2), "MatMulInteger": (1, None, 3)}


class Int8RequantizeError(ValueError):
    """A graph whose int8 weights cannot be requantized (an op or a zero point this module does not handle)."""


class _Graph:
    """Initializers and node uses of one graph, with the changes to make."""

    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.inits = {t.name: t for t in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for n in model.graph.node:
            for i, name in enumerate(n.input):
                self.uses.setdefault(name, []).append((n, i))
        # tensors to change, each with the uses (node id, input index) traced to it
        self.weights: dict[str, set[tuple[int, int]]] = {}  # int8 weights to requantize
        self.scales: dict[str, set[tuple[int, int]]] = {}  # their scales (and their biases' scales), divided by FACTOR
        self.biases: dict[str, set[tuple[int, int]]] = {}  # int32 biases that follow a weight's scale

    def array(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None

    def account(self, table: dict, name: str, node: onnx.NodeProto, index: int) -> None:
        if name not in self.inits:
            raise Int8RequantizeError(f"{node.op_type} {node.name}: input {index} ({name}) is not an initializer")
        table.setdefault(name, set()).add((id(node), index))


def _downstream_scale(g: _Graph, node: onnx.NodeProto) -> tuple[str, onnx.NodeProto, int]:
    """MatMulInteger -> Cast -> Mul(., scales) with scales = Mul(activation scale, weight scale): the weight
    scale (the one initializer among the scales Mul's inputs), the scales Mul and its input index."""
    chain = g.uses.get(node.output[0], [])
    if len(chain) == 1 and chain[0][0].op_type == "Cast":
        chain = g.uses.get(chain[0][0].output[0], [])
    if len(chain) == 1 and chain[0][0].op_type == "Mul":
        mul, i = chain[0]
        scales = g.producer.get(mul.input[1 - i])
        if scales is not None and scales.op_type == "Mul":
            found = [(name, j) for j, name in enumerate(scales.input) if name in g.inits]
            if len(found) == 1:
                return found[0][0], scales, found[0][1]
    raise Int8RequantizeError(f"MatMulInteger {node.name}: cannot find its weight's scale (expected Cast -> Mul by a "
                              "product of scales, as onnxruntime.quantization writes it)")


def _collect(g: _Graph, node: onnx.NodeProto) -> None:
    """Note the weight that `node` reads, its scale and (after a DequantizeLinear) the bias that goes with it."""
    w_in, s_in, z_in = _WEIGHT_INPUTS[node.op_type]
    if len(node.input) <= w_in or (w := g.array(node.input[w_in])) is None or w.dtype != np.int8:
        return  # an activation, or a uint8 / int32 tensor (u8 x u8 and int32 products do not saturate)
    if int(np.abs(w.astype(np.int32)).max(initial=0)) <= SEVEN_BIT_MAX:
        return  # already fits: 7-bit weights, or a tensor of small values
    zero = g.array(node.input[z_in]) if len(node.input) > z_in and node.input[z_in] else np.zeros(1, np.int8)
    if zero is None or np.any(zero != 0):
        raise Int8RequantizeError(f"{node.op_type} {node.name}: the weight {node.input[w_in]} has a nonzero or computed zero point; "
                                  "only symmetric int8 weights are requantized")
    g.account(g.weights, node.input[w_in], node, w_in)
    g.account(g.scales, *((node.input[s_in], node, s_in) if s_in is not None else _downstream_scale(g, node)))
    if node.op_type == "DequantizeLinear":
        for consumer, _ in g.uses.get(node.output[0], []):
            if consumer.op_type in ("Conv", "Gemm") and len(consumer.input) > 2 and consumer.input[2]:
                bias = g.producer.get(consumer.input[2])
                if bias is not None and bias.op_type == "DequantizeLinear" and bias.input[0] in g.inits:
                    if len(bias.input) > 2 and bias.input[2] and np.any(g.array(bias.input[2]) != 0):
                        raise Int8RequantizeError(f"{consumer.op_type} {consumer.name}: its bias has a nonzero zero point")
                    g.account(g.biases, bias.input[0], bias, 0)
                    g.account(g.scales, bias.input[1], bias, 1)


def _check_accounted(g: _Graph, table: dict, what: str) -> None:
    """Every use of a tensor to be rescaled must be one this module traced (else another use would change too)."""
    for name, seen in table.items():
        uses = {(id(n), i) for n, i in g.uses.get(name, [])}
        if uses != seen:
            others = sorted({n.op_type for n, i in g.uses.get(name, []) if (id(n), i) not in seen})
            raise Int8RequantizeError(f"the {what} {name} is also used by {', '.join(others)}: cannot rescale it for one weight only")


def requantize_to_7bit(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` whose int8 weights wider than 7 bits are mapped onto [-64, 64] (scales, and the
    int32 biases tied to them, follow), and how many weights changed (0: the copy equals the model).
    Raises Int8RequantizeError for a wide int8 initializer it cannot place, so nothing is served half done."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = _Graph(out)
    for node in out.graph.node:
        if node.op_type in _WEIGHT_INPUTS:
            _collect(g, node)
    # tables that only Gather reads (quantized embedding rows, export.compact) are looked up, never multiplied
    # by VPMADDUBSW: they keep their 8 bits
    lookups = {name for name in g.inits if g.uses.get(name) and all(n.op_type == "Gather" and i == 0 for n, i in g.uses[name])}
    left = [name for name, t in g.inits.items() if t.data_type == onnx.TensorProto.INT8 and name not in g.weights
            and name not in lookups and int(np.abs(g.array(name).astype(np.int32)).max(initial=0)) > SEVEN_BIT_MAX]
    if left:
        users = sorted({n.op_type for name in left for n, _ in g.uses.get(name, [])})
        raise Int8RequantizeError(f"int8 tensors wider than 7 bits read by {', '.join(users) or 'nothing'} ({left[0]}...): "
                                  "not a weight input this module knows")
    for table, what in ((g.weights, "weight"), (g.scales, "scale"), (g.biases, "bias")):
        _check_accounted(g, table, what)
    for name in g.weights:
        q = np.clip(np.round(g.array(name).astype(np.float64) * FACTOR), -SEVEN_BIT_MAX, SEVEN_BIT_MAX)
        g.inits[name].CopyFrom(numpy_helper.from_array(q.astype(np.int8), name))
    for name in g.scales:
        s = g.array(name)
        g.inits[name].CopyFrom(numpy_helper.from_array((s.astype(np.float64) / FACTOR).astype(s.dtype), name))
    for name in g.biases:  # the bias's real value stays; its int32 steps follow the scale
        b = g.array(name)
        g.inits[name].CopyFrom(numpy_helper.from_array(np.round(b.astype(np.float64) * FACTOR).astype(b.dtype), name))
    return out, len(g.weights)


def open_7bit(path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None) -> tuple[OrtGraph, int]:
    """The graph at `path` in an ONNX Runtime session with 7-bit weights (requantized in memory when the
    file's are wider), and how many weights were requantized."""
    import onnx

    model, count = requantize_to_7bit(onnx.load(str(path)))
    if not count:
        return OrtGraph(path, threads, providers), 0
    if model.ByteSize() > _MAX_PROTO_BYTES:
        raise Int8RequantizeError(f"{path}: over 2 GB once its external data is inlined; cannot make a session from memory")
    return OrtGraph(path, threads, providers, model=model.SerializeToString()), count
