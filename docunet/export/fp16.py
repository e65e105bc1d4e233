"""fp16 variants of exported fp32 graphs (for GPUs).

`convert_to_fp16` rewrites a graph node by node. Nodes chosen by the graph's `Fp16Policy` (from
the model family's export spec: which module classes may run in half precision) run in fp16;
every other node keeps fp32, and Cast nodes are inserted wherever a value crosses between the two.
Graph inputs and outputs stay fp32, so callers never see the difference. Always fp32, whatever the
policy: LayerNormalization, Softmax, LogSoftmax, ReduceLogSumExp and every reduction.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..models.base import Fp16Policy

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


def fp16_nodes(model: onnx.ModelProto, policy: Fp16Policy) -> set[str]:
    """Names of the nodes that may run in fp16 under `policy` (see Fp16Policy)."""
    nodes = list(model.graph.node)
    if not has_module_metadata(model):  # no module metadata: a conservative op-type policy
        ops = policy.fallback_ops if policy.fallback_ops is not None else FP16_OPS - {"Cast"}
        return {n.name for n in nodes if n.op_type in ops}
    feeding_classes = policy.feeding[1] if policy.feeding else ()
    chosen: set[int] = set()
    feeders: set[int] = set()
    for i, n in enumerate(nodes):
        stack = module_stack(n)
        classes = [cls for _, cls in stack]
        if any(c.endswith(policy.inside) for c in classes):
            chosen.add(i)
            continue
        depth = next((k for k, c in enumerate(classes) if c.endswith(policy.below)), None) if policy.below else None
        if depth is not None and len(stack) > depth + 1:  # inside a submodule of the class
            chosen.add(i)
        elif any(c.endswith(feeding_classes) for c in classes):
            feeders.add(i)
    if policy.feeding:
        targets = {i for i in feeders if nodes[i].op_type == policy.feeding[0]}
        chosen |= _ancestors(nodes, targets, feeders)  # up to and including the target op
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


def export_fp16(src: Path, dst: Path, policy: Fp16Policy) -> dict:
    """Write the fp16 variant of the graph at `src` to `dst`; returns conversion statistics."""
    model = onnx.load(str(src))
    converted, stats = convert_to_fp16(model, fp16_nodes(model, policy))
    onnx.save(converted, str(dst))
    return {"policy": "module" if has_module_metadata(model) else "op-type", **stats.as_dict()}
