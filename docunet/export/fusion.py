"""ONNX Runtime fusions for the encoder graph (CPU and CUDA execution providers; not for TensorRT).

Two steps, both exact up to float rounding (the export validates the result against PyTorch):
1. ONNX Runtime's own transformer optimizer (`onnxruntime.transformers.optimizer`, BERT rules)
   fuses the bias + GELU of each feed-forward layer (`BiasGelu`) and the residual + LayerNorm
   pairs (`SkipLayerNormalization`). Its attention rule does not match the dynamo exporter's
   graphs, so it is switched off here.
2. `fuse_attention` replaces each layer's attention core (Q/K/V reshapes and transposes, QK^T,
   scaling, additive mask, softmax, xV, output transpose and reshape) with one
   `com.microsoft.MultiHeadAttention` node. The projections stay ordinary MatMul + Add nodes, so
   int8 dynamic quantization still applies to them, and the last layer's key projection stays
   available to the recomputation of the entity attention rows.

The fused graph uses contrib ops that only ONNX Runtime runs: exports meant for TensorRT keep the
plain graph. Why: on 2 CPU cores these nodes were about a quarter of the int8 encoder's time
(softmax, transposes, mask adds and elementwise GELU each as separate passes over memory).
"""
from __future__ import annotations

import contextlib
import io
from collections import Counter, defaultdict
from pathlib import Path

import onnx
from onnx import helper, numpy_helper

from .int8 import quiet_root_logger

CONTRIB_DOMAIN = "com.microsoft"


def _constants(graph: onnx.GraphProto) -> dict:
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _perm(node: onnx.NodeProto) -> list[int] | None:
    return next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"), None)


def _reshapes_to_heads(node: onnx.NodeProto, consts: dict, producer: dict, head_dim: int) -> bool:
    """A Reshape to [B, S, heads, head_dim]: a constant 4-element target shape, or a Concat of four
    1-element pieces (the dynamic batch and sequence sizes) whose last piece is the constant head_dim."""
    shape = consts.get(node.input[1])
    if shape is not None:
        return shape.ndim == 1 and len(shape) == 4 and int(shape[-1]) == head_dim
    concat = producer.get(node.input[1])
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
        return False
    last = consts.get(concat.input[-1])
    return last is not None and last.size == 1 and int(last.reshape(())) == head_dim


def fuse_attention(model: onnx.ModelProto, num_heads: int, hidden_size: int) -> int:
    """Replace every matching attention core with com.microsoft.MultiHeadAttention; returns how many.

    Matched (per layer, as traced from the eager attention of BERT-like encoders):
        q, k, v = Add(MatMul(x, W), b)                              [B, S, hidden]
        q4 = Transpose(Reshape(q, [B, S, -1, dh]), 0,2,1,3)         k4 = ... perm 0,2,3,1 (K^T)
        p = Softmax(Add(Mul(MatMul(q4, k4), scale), mask))          mask [B or 1, 1, S, S] additive
        out = Reshape(Transpose(MatMul(p, v4), 0,2,1,3), [B, S, hidden])
    Anything else (another consumer of the probabilities, other permutations) is left as it is.
    """
    graph = model.graph
    head_dim = hidden_size // num_heads
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in graph.node:
        for i in n.input:
            consumers[i].append(n)
    consts = _constants(graph)
    graph_outputs = {o.name for o in graph.output}

    def made_by(name: str, op: str) -> onnx.NodeProto | None:
        node = producer.get(name)
        return node if node is not None and node.op_type == op else None

    def only_user(name: str, op: str) -> onnx.NodeProto | None:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    replaced: dict[str, onnx.NodeProto] = {}
    for softmax in (n for n in graph.node if n.op_type == "Softmax"):
        axis = next((helper.get_attribute_value(a) for a in softmax.attribute if a.name == "axis"), -1)
        pv = only_user(softmax.output[0], "MatMul")
        add = made_by(softmax.input[0], "Add")
        if axis not in (-1, 3) or pv is None or pv.input[0] != softmax.output[0] or add is None:
            continue
        mul, mask = made_by(add.input[0], "Mul"), add.input[1]
        if mul is None or mul.input[1] not in consts or consts[mul.input[1]].size != 1:
            continue
        qk = made_by(mul.input[0], "MatMul")
        if qk is None:
            continue
        tq, tk, tv = made_by(qk.input[0], "Transpose"), made_by(qk.input[1], "Transpose"), made_by(pv.input[1], "Transpose")
        if None in (tq, tk, tv) or (_perm(tq), _perm(tk), _perm(tv)) != ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]):
            continue
        rq, rk, rv = (made_by(t.input[0], "Reshape") for t in (tq, tk, tv))
        if None in (rq, rk, rv) or not all(_reshapes_to_heads(r, consts, producer, head_dim) for r in (rq, rk, rv)):
            continue
        to = only_user(pv.output[0], "Transpose")
        ro = only_user(to.output[0], "Reshape") if to is not None and _perm(to) == [0, 2, 1, 3] else None
        if ro is None:
            continue
        removed = [qk.output[0], mul.output[0], add.output[0], softmax.output[0], pv.output[0], to.output[0]]
        if any(len(consumers[t]) != 1 or t in graph_outputs for t in removed):
            continue  # an intermediate (the probabilities, the scores) is needed elsewhere
        scale = float(consts[mul.input[1]].reshape(()))
        # inputs: query, key, value, bias, key_padding_mask, attention_bias ([B or 1, H or 1, S, S], added to QK^T * scale)
        replaced[ro.name] = helper.make_node(
            "MultiHeadAttention", [rq.input[0], rk.input[0], rv.input[0], "", "", mask], [ro.output[0]],
            name=f"fused_attention_{len(replaced)}", domain=CONTRIB_DOMAIN, num_heads=num_heads, scale=scale)
    if not replaced:
        return 0
    nodes = [replaced.get(n.name, n) for n in graph.node]
    _keep_live(graph, nodes)
    if not any(o.domain == CONTRIB_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    return len(replaced)


def _keep_live(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Set the graph's nodes to those (in order) that a graph output depends on."""
    live = {o.name for o in graph.output}
    keep = []
    for node in reversed(nodes):
        if any(o in live for o in node.output):
            keep.append(node)
            live.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    kept_inits = [t for t in graph.initializer if t.name in live]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)


def fuse_encoder(src: Path, num_heads: int, hidden_size: int, attention: bool = True) -> tuple[onnx.ModelProto, dict]:
    """The encoder graph `src` with ONNX Runtime's fusions (see the module docstring), and what was fused.
    `attention=False`: step 1 only, for graphs that run the layers' attention their own way (PL-Marker's
    marker passes), where bias + GELU and residual + LayerNorm were about an eighth of the int8 graph's time.

    Raises ValueError when no attention layer matched (the graph is then not what this module
    expects, and the caller should keep the plain graph), or, with attention=False, when nothing was fused."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_attention = False  # its patterns do not match dynamo graphs; fuse_attention does this step
    # its symbolic shape inference fails on the marker graphs and prints so (harmless: the fusions do not need it)
    with quiet_root_logger(), contextlib.redirect_stdout(io.StringIO()):
        optimized = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                   opt_level=0, optimization_options=options)
    model = optimized.model
    before = Counter(n.op_type for n in onnx.load(str(src), load_external_data=False).graph.node)
    if attention and fuse_attention(model, num_heads, hidden_size) == 0:
        raise ValueError(f"{src}: no attention layer matched the fusion pattern")
    after = Counter(n.op_type for n in model.graph.node)
    fused = {op: after[op] for op in ("MultiHeadAttention", "SkipLayerNormalization", "BiasGelu", "LayerNormalization") if after[op]}
    if not attention and not any(after[op] for op in ("SkipLayerNormalization", "BiasGelu")):
        raise ValueError(f"{src}: no feed-forward layer matched the fusion patterns")
    if any(n.domain == CONTRIB_DOMAIN for n in model.graph.node) and not any(o.domain == CONTRIB_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    method = "onnxruntime.transformers.optimizer (bert rules, attention off)"
    return model, {"method": method + (" + docunet MultiHeadAttention fusion" if attention else "; attention as exported"),
                   "fused": fused, "nodes_before": sum(before.values()), "nodes_after": sum(after.values())}
