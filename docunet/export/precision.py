"""Precision variants of the exported fp32 graphs.

fp16 (for GPUs): `convert_to_fp16` rewrites a graph node by node. Nodes chosen by a policy run in
half precision; every other node keeps fp32, and Cast nodes are inserted wherever a value crosses
between the two. Graph inputs and outputs stay fp32, so callers never see the difference. What
stays fp32 (see `fp16_policy`):
- always: LayerNormalization, Softmax, LogSoftmax, ReduceLogSumExp and every reduction;
- encoder: everything outside the transformer's own modules, i.e. the exact recomputation of the
  last layer's attention rows (scores, mask, softmax), as the PyTorch model does under autocast;
- head: the entity-aware feature map (products of attention rows underflow in fp16), the grouped
  bilinear and the output scatter (the final logits). The U-Net and the tanh extractors run in fp16.

int8 (for CPUs): `quantize_encoder_int8` is ONNX Runtime's dynamic quantization with int8 weights
per output channel (per-tensor scales were measured to be too inaccurate for MiniLM); activations
are quantized at run time. By default only the encoder is quantized; with `--int8-head`,
`quantize_head_int8` also quantizes the head (static QDQ for the U-Net and the extractors, dynamic
for the grouped bilinear).
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)

# Ops that are never run in fp16: normalisations, softmaxes and reductions (accumulation range).
ALWAYS_FP32_OPS = frozenset({
    "LayerNormalization", "Softmax", "LogSoftmax", "ReduceLogSumExp", "ReduceSum", "ReduceMean",
    "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceProd", "Exp", "Log", "CumSum",
    "BatchNormalization", "InstanceNormalization", "GroupNormalization", "RMSNormalization", "Range",
})
# Ops that may run in fp16: their float outputs follow their float inputs (or a `to`/value attribute).
FP16_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Pow", "MatMul", "Gemm", "Conv", "Einsum",
    "Relu", "Tanh", "Sigmoid", "Erf", "Gelu", "Max", "Min", "Clip", "Where", "MaxPool", "Resize", "Pad",
    "Transpose", "Reshape", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Expand", "Tile",
    "Flatten", "Identity", "Gather", "GatherND", "GatherElements", "ScatterND", "Cast",
})
# Float inputs that must keep fp32 even when their node runs in fp16 (Resize's roi and scales).
_FP32_INPUTS = {"Resize": frozenset({1, 2})}
# Ops that only read the shape of a float input: no cast needed.
_SHAPE_ONLY = frozenset({"Shape", "Size"})


@dataclass
class Fp16Stats:
    fp16_nodes: int = 0
    fp32_nodes: int = 0
    casts_inserted: int = 0
    fp16_ops: Counter = field(default_factory=Counter)
    fp32_float_ops: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"fp16_nodes": self.fp16_nodes, "fp32_nodes": self.fp32_nodes, "casts_inserted": self.casts_inserted,
                "fp16_ops": dict(sorted(self.fp16_ops.items())), "fp32_float_ops": dict(sorted(self.fp32_float_ops.items()))}


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


# ----------------------------------------------------------------------------------------------
# Which nodes run in fp16
# ----------------------------------------------------------------------------------------------
def module_stack(node: onnx.NodeProto) -> list[tuple[str, str]]:
    """(attribute, class) of the modules a node was exported from (torch.onnx dynamo metadata), outermost first."""
    ns = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
    segments = ns.split("/")[:-1]  # the last segment is the aten op itself
    out = []
    for seg in segments:
        attr, _, cls = seg.partition(": ")
        out.append((attr.strip(), cls.strip()))
    return out


def has_module_metadata(model: onnx.ModelProto) -> bool:
    return any(module_stack(n) for n in model.graph.node)


def _ancestors(nodes: list[onnx.NodeProto], targets: set[int], allowed: set[int]) -> set[int]:
    """Indices of `allowed` nodes that feed (transitively, through allowed nodes) any of `targets`."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    seen, stack = set(), list(targets)
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        for name in nodes[i].input:
            j = producer.get(name)
            if j is not None and j in allowed and j not in seen:
                stack.append(j)
    return seen


def fp16_policy(model: onnx.ModelProto, role: str) -> set[str]:
    """Names of the nodes that may run in fp16 for the `encoder` or `head` graph (see the module doc)."""
    nodes = list(model.graph.node)
    if role not in ("encoder", "head"):
        raise ValueError(f"role must be 'encoder' or 'head', got {role!r}")
    if not has_module_metadata(model):  # no module metadata: a conservative op-type policy
        ops = {"Conv", "Relu", "MaxPool", "Resize"} if role == "head" else FP16_OPS - {"Cast"}
        return {n.name for n in nodes if n.op_type in ops}
    chosen: set[int] = set()
    if role == "encoder":
        for i, n in enumerate(nodes):
            stack = module_stack(n)
            depth = next((k for k, (_, cls) in enumerate(stack) if cls.endswith("DocuNetEncoder")), None)
            if depth is not None and len(stack) > depth + 1:  # inside the transformer (or its last layer's q/k)
                chosen.add(i)
    else:
        classifier = set()
        for i, n in enumerate(nodes):
            classes = [cls for _, cls in module_stack(n)]
            if any(c.endswith(("UNet", "CellFeedForward")) for c in classes):
                chosen.add(i)
            elif any(c.endswith("PairClassifier") for c in classes):
                classifier.add(i)
        tanh = {i for i in classifier if nodes[i].op_type == "Tanh"}
        chosen |= _ancestors(nodes, tanh, classifier)  # the extractors, up to and including tanh
    return {nodes[i].name for i in chosen}


# ----------------------------------------------------------------------------------------------
# The rewrite
# ----------------------------------------------------------------------------------------------
def _to_half(arr: np.ndarray) -> np.ndarray:
    return np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)


def convert_to_fp16(model: onnx.ModelProto, half_nodes: set[str]) -> tuple[onnx.ModelProto, Fp16Stats]:
    """A copy of `model` where the named nodes run in fp16 (where their op allows it); I/O stays fp32."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    if model.functions or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        raise ValueError("fp16 conversion supports flat graphs only (no local functions or subgraphs)")
    names = [n.name for n in g.node]
    if len(set(names)) != len(names) or "" in names:
        for i, n in enumerate(g.node):  # give every node a unique name first
            n.name = f"{n.op_type}_{i}" if not n.name or names.count(n.name) > 1 else n.name
    orig_type: dict[str, int] = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        orig_type[vi.name] = vi.type.tensor_type.elem_type
    inits = {t.name: t for t in g.initializer}
    for t in g.initializer:
        orig_type[t.name] = t.data_type
    cur = {name: orig_type[name] for name in [i.name for i in g.input] + list(inits)}
    stats = Fp16Stats()
    new_nodes: list[onnx.NodeProto] = []
    converted: dict[tuple[str, int], str] = {}
    new_inits: list[TensorProto] = []
    fp32_uses: Counter = Counter()
    taken = {n.name for n in g.node} | set(orig_type)

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    def as_type(name: str, want: int) -> str:
        if cur.get(name) == want:
            if name in inits:
                fp32_uses[name] += 1
            return name
        key = (name, want)
        if key not in converted:
            suffix = "fp16" if want == HALF else "fp32"
            if name in inits and want == HALF:
                t = numpy_helper.from_array(_to_half(numpy_helper.to_array(inits[name])), fresh(f"{name}__{suffix}"))
                new_inits.append(t)
                converted[key] = t.name
            else:
                out = fresh(f"{name}__{suffix}")
                new_nodes.append(helper.make_node("Cast", [name], [out], name=fresh(f"{name}__cast_{suffix}"), to=want))
                stats.casts_inserted += 1
                converted[key] = out
            cur[converted[key]] = want
        return converted[key]

    for node in g.node:
        float_io = any(orig_type.get(x) in (FLOAT, HALF) for x in list(node.input) + list(node.output) if x)
        half = node.name in half_nodes and node.op_type in FP16_OPS and node.op_type not in ALWAYS_FP32_OPS and float_io
        keep_inputs = _FP32_INPUTS.get(node.op_type, frozenset())
        for i, name in enumerate(node.input):
            if not name or cur.get(name) not in (FLOAT, HALF) or node.op_type in _SHAPE_ONLY:
                if name in inits and cur.get(name) == FLOAT:
                    fp32_uses[name] += 1
                continue
            want = HALF if half and i not in keep_inputs else FLOAT
            if node.op_type == "Cast" and not half:
                want = cur[name]  # a cast reads any float type as it is
            node.input[i] = as_type(name, want)
        if half:
            stats.fp16_nodes += 1
            stats.fp16_ops[node.op_type] += 1
            if node.op_type == "Cast":
                for a in node.attribute:
                    if a.name == "to" and a.i == FLOAT:
                        a.i = HALF
        else:
            stats.fp32_nodes += 1
            if float_io:
                stats.fp32_float_ops[node.op_type] += 1
        for name in node.output:
            if not name:
                continue
            t = orig_type.get(name)
            if half and t == FLOAT:
                t = HALF
            if node.op_type == "Cast":
                t = next(a.i for a in node.attribute if a.name == "to")
            cur[name] = t if t is not None else 0
        new_nodes.append(node)

    # graph outputs stay fp32: rename the half value and cast it back
    for out in g.output:
        if cur.get(out.name) == HALF:
            half_name = fresh(f"{out.name}__fp16")
            for n in new_nodes:
                for k, x in enumerate(n.input):
                    if x == out.name:
                        n.input[k] = half_name
                for k, x in enumerate(n.output):
                    if x == out.name:
                        n.output[k] = half_name
            cur[half_name] = HALF
            new_nodes.append(helper.make_node("Cast", [half_name], [out.name], name=fresh(f"{out.name}__cast_fp32"), to=FLOAT))
            stats.casts_inserted += 1

    del g.node[:]
    g.node.extend(new_nodes)
    keep = [t for t in g.initializer if not (t.data_type == FLOAT and (t.name, HALF) in converted and fp32_uses[t.name] == 0)]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    for vi in g.value_info:
        if vi.name in cur and cur[vi.name] in (FLOAT, HALF):
            vi.type.tensor_type.elem_type = cur[vi.name]
    onnx.checker.check_model(model)
    return model, stats


def export_fp16(src: Path, dst: Path, role: str) -> dict:
    """Write the fp16 variant of the graph at `src` to `dst`; returns conversion statistics."""
    model = onnx.load(str(src))
    half_nodes = fp16_policy(model, role)
    converted, stats = convert_to_fp16(model, half_nodes)
    onnx.save(converted, str(dst))
    return {"policy": "module" if has_module_metadata(model) else "op-type", **stats.as_dict()}


# ----------------------------------------------------------------------------------------------
# int8: dynamic quantization of the encoder's weights, per output channel
# ----------------------------------------------------------------------------------------------
def quantize_encoder_int8(src: Path, dst: Path, reduce_range: bool = True) -> dict:
    """Dynamic int8 quantization (per-channel weights) of every MatMul/Gemm with constant weights.

    `reduce_range` keeps the weights to 7 bits. x86 CPUs without VNNI (AVX2, plain AVX-512) multiply
    uint8 activations by int8 weights with VPMADDUBSW, whose pairwise int16 sums saturate with full
    8-bit weights; measured on MiniLM (Re-DocRED dev, AVX2): full range predicts 10% fewer relations
    than fp32 (dev F1 49.58 against 48.88, a shifted operating point), 7-bit weights 1-2% fewer (48.91)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    inits = {t.name for t in model.graph.initializer}
    targets = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits]
    with quiet_root_logger():
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, reduce_range=reduce_range,
                         weight_type=QuantType.QInt8, nodes_to_quantize=targets, extra_options={"MatMulConstBOnly": True})
    out = onnx.load(str(dst), load_external_data=False)
    ops = Counter(n.op_type for n in out.graph.node)
    return {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "int8", "per_channel": True,
            "reduce_range": reduce_range,
            "quantized_nodes": len(targets), "ops": {k: ops[k] for k in sorted(ops) if k in
                                                      ("DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul", "MatMul", "Gemm")}}


# ----------------------------------------------------------------------------------------------
# int8 head (optional): static quantization of the U-Net convolutions and the weight MatMuls,
# calibrated on head inputs computed from real documents
# ----------------------------------------------------------------------------------------------
def collect_head_inputs(model, featurizer, docs, batch_size: int = 4, limit: int = 64) -> list[dict[str, np.ndarray]]:
    """Head inputs (as the exported head receives them) for up to `limit` documents, one dict per grid group."""
    import torch

    from ..featurize import collate_features
    from ..modeling import run_docunet

    captured: list[dict[str, np.ndarray]] = []

    def head(token_states, entity_emb, entity_attn, entity_mask):
        captured.append({"token_states": token_states.numpy(), "entity_emb": entity_emb.numpy(),
                         "entity_attn": entity_attn.numpy(), "entity_mask": entity_mask.numpy().astype(bool)})
        return model.head(token_states, entity_emb, entity_attn, entity_mask)

    features = featurizer(list(docs)[:limit])
    with torch.inference_mode():
        for i in range(0, len(features), batch_size):
            run_docunet(collate_features(featurizer, features[i : i + batch_size]), model.encoder, head, model.config)
    return captured


def quantize_head_int8(src: Path, dst: Path, calibration: list[dict[str, np.ndarray]], reduce_range: bool = True) -> dict:
    """int8 head: QDQ static int8 with per-channel weights for every Conv and every MatMul/Gemm with a
    constant weight (the feature map's attention products and the output stay fp32), then dynamic int8
    for the grouped bilinear's MatMuls (`quantize_bilinear_int8`). `reduce_range`: 7-bit weights, as for
    the encoder (`quantize_encoder_int8`)."""
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


def quantize_bilinear_int8(src: Path, dst: Path, reduce_range: bool = True) -> tuple[int, int]:
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
