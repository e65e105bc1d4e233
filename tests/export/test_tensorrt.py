"""TensorRT: the compatibility checker and the install hint (run everywhere), real engine builds (where
`tensorrt` imports and a CUDA GPU is present; skipped elsewhere, with the reason printed by -ra)."""
from __future__ import annotations

import importlib.util
import random

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from docunet.engines.tensorrt import INSTALL_HINT, TensorRTUnavailable, TrtSettings, buckets, require_tensorrt
from docunet.export.tensorrt_check import TRT_SUPPORTED_OPS, check_compatibility, check_profiles
from docunet.models.docunet import FAMILY
from docunet.models.docunet.export_spec import trt_profiles as plan_profiles
from tests.conftest import many_entities_document, synthetic_document, tiny_model

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def _graph(tmp_path, nodes, inputs, outputs, opset=18, name="g.onnx", inits=()):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _profile(name, **inputs):
    return {"name": name, "inputs": {k: {"min": v[0], "opt": v[1], "max": v[2]} for k, v in inputs.items()}}


# ----------------------------------------------------------------------------------------------
# Runs everywhere
# ----------------------------------------------------------------------------------------------
@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is importable here, so there is no install error to check")
def test_missing_tensorrt_raises_with_install_instructions():
    with pytest.raises(TensorRTUnavailable) as err:
        require_tensorrt()
    msg = str(err.value)
    assert "pip install" in msg and "tensorrt" in msg and "10.12" in msg and "nvcr.io/nvidia/tensorrt" in msg
    assert INSTALL_HINT.split(" ")[0] in msg


def test_checker_accepts_a_supported_graph_with_covering_profiles(tmp_path):
    x = helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["windows", "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["windows", "seq"])
    path = _graph(tmp_path, [helper.make_node("Cast", ["input_ids"], ["c"], to=TensorProto.FLOAT),
                             helper.make_node("Relu", ["c"], ["y"])], [x], [y])
    profiles = [_profile("a", input_ids=([1, 1], [4, 128], [8, 128])), _profile("b", input_ids=([1, 129], [4, 512], [8, 512]))]
    report = check_compatibility(path, profiles)
    assert report["compatible"], report["problems"]
    assert report["opset"] == 18 and report["ops"] == {"Cast": 1, "Relu": 1}


def test_checker_flags_opset_ops_types_int64_tokens_and_profile_gaps(tmp_path):
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["windows", "seq"])
    mask = helper.make_tensor_value_info("mask", TensorProto.BOOL, ["windows", "seq"])
    out = helper.make_tensor_value_info("out", TensorProto.INT64, None)
    out2 = helper.make_tensor_value_info("u", TensorProto.INT32, None)
    nodes = [helper.make_node("NonZero", ["mask"], ["out"]),  # NonZero reads FP32/FP16 only
             helper.make_node("Unique", ["input_ids"], ["u0"]),  # not supported at all
             helper.make_node("Cast", ["u0"], ["u"], to=TensorProto.INT32)]
    path = _graph(tmp_path, nodes, [ids, mask], [out, out2], opset=25)
    profiles = [_profile("short", input_ids=([1, 1], [2, 64], [4, 64]), mask=([1, 1], [2, 64], [4, 64])),
                _profile("long", input_ids=([1, 200], [2, 512], [4, 512]), mask=([1, 200], [2, 512], [4, 256]))]
    report = check_compatibility(path, profiles)
    text = "\n".join(report["problems"])
    assert not report["compatible"]
    assert "opset 25 is outside" in text
    assert "Unique (1 node) is not supported" in text
    assert "NonZero node" in text and "reads BOOL" in text
    assert "token input 'input_ids' is int64" in text
    assert "sizes 65..199 are not covered" in text
    assert "dimension 'seq' has ranges" in text  # the two inputs disagree on 'seq' in profile 'long'


def test_checker_flags_static_mismatch_missing_profile_and_unnamed_dims():
    inputs = [{"name": "x", "dtype": "float32", "shape": ["batch", 32]}, {"name": "m", "dtype": "bool", "shape": ["batch", "?"]}]
    assert check_profiles(inputs, []) == ["no optimization profile: every dynamic input would be fixed to [1, ...]"]
    problems = check_profiles(inputs, [_profile("p", x=([1, 16], [2, 16], [4, 16]))])
    assert any("static 32" in p for p in problems) and any("no shapes for input 'm'" in p for p in problems)
    problems = check_profiles(inputs, [_profile("p", x=([1, 32], [2, 32], [4, 32]), m=([1, 1], [2, 5], [4, 9]))])
    assert any("dynamic without a name" in p for p in problems)
    problems = check_profiles(inputs, [_profile("p", x=([2, 32], [1, 32], [4, 32]), m=([2, 1], [1, 5], [4, 9]))])
    assert any("min <= opt <= max" in p for p in problems)


def test_planned_profiles_cover_every_dynamic_dimension(tokenizer):
    model, _ = tiny_model(tokenizer)
    profiles = plan_profiles(model.config, TrtSettings(seq_buckets=(64, 128, 512, 1024), doc_buckets=(256, 4096)))
    assert [p["name"] for p in profiles["encoder"]] == ["seq 1-64", "seq 65-128", "seq 129-512"]  # capped at the model's 512
    assert [p["name"] for p in profiles["head"]] == ["doc_len 1-256", "doc_len 257-4096"]
    grid = profiles["head"][0]["inputs"]["entity_emb"]
    assert grid["min"][1] == 4 and grid["opt"][1] == 42 and grid["max"][1] == 42 + 2 * 14  # from 4: grid_fit
    enc_inputs = [{"name": n, "dtype": "int32", "shape": s} for n, s in
                  (("input_ids", ["windows", "seq"]), ("attention_mask", ["windows", "seq"]), ("query_pos", ["windows", "queries"]))]
    assert check_profiles(enc_inputs, profiles["encoder"]) == []
    assert buckets((512, 128), cap=300) == [(1, 128), (129, 300)]


def test_supported_op_table_covers_the_exported_graphs_ops():
    for op in ("Einsum", "NonZero", "ScatterND", "GatherND", "Resize", "Pad", "LayerNormalization", "Erf", "IsNaN", "MaxPool"):
        assert op in TRT_SUPPORTED_OPS
    for op in ("MatMulInteger", "DynamicQuantizeLinear", "Unique"):
        assert op not in TRT_SUPPORTED_OPS
    assert "BOOL" not in TRT_SUPPORTED_OPS["NonZero"]


# ----------------------------------------------------------------------------------------------
# Real builds: only where TensorRT and a CUDA device exist
# ----------------------------------------------------------------------------------------------
def _need_tensorrt():
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here (pip install tensorrt>=10.12 on a CUDA machine)")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but torch sees no CUDA device")
    return trt


@pytest.fixture(scope="module")
def trt_export(tmp_path_factory, tokenizer):
    _need_tensorrt()
    from docunet.checkpoint import save_checkpoint
    from docunet.export import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("trt")
    model, _ = tiny_model(tokenizer, seed=3)
    ckpt = save_checkpoint(model, tokenizer, root / "ckpt")
    settings = TrtSettings(seq_buckets=(128, 512), doc_buckets=(512, 1024), max_windows=8, opt_windows=2, max_docs=4,
                           opt_docs=2, workspace_gb=1.0, optimization_level=1)
    fp32 = export_checkpoint(ckpt, root / "fp32", ExportOptions(tensorrt=True, trt=settings))
    fp16 = export_checkpoint(ckpt, root / "fp16", ExportOptions(precision="fp16", tensorrt=True, trt=settings,
                                                                 fp32_from=str(root / "fp32")))
    return {"ckpt": ckpt, "fp32": fp32, "fp16": fp16, "root": root, "settings": settings}


def test_engines_are_built_recorded_and_verified(trt_export):
    from docunet.export import verify_manifest

    for key in ("fp32", "fp16"):
        res = trt_export[key]
        engines = res.manifest["tensorrt"]["engines"]
        assert engines["strongly_typed"] and engines["tensorrt_version"]
        for role in ("encoder", "head"):
            e = engines["engines"][role]
            assert (res.directory / e["file"]).stat().st_size > 0 and e["file"] in res.manifest["files"]
            assert len(e["profiles"]) == 2
        assert (res.directory / "tensorrt" / "timing.cache").stat().st_size > 0
        verify_manifest(res.directory)


def test_engines_reproduce_pytorch(trt_export, tokenizer):
    from docunet.checkpoint import load_checkpoint
    from docunet.engines.tensorrt import TrtGraph
    from docunet.export.validate import compare, run_backend

    model, feat = load_checkpoint(trt_export["ckpt"])
    rng = random.Random(0)
    docs = [synthetic_document(rng, "a", n_pairs=3), synthetic_document(rng, "long", n_filler=60, n_pairs=8),
            many_entities_document(45, "crowd")]
    features = feat(docs)
    ref = run_backend(FAMILY, feat, model.config, FAMILY.graphs(model), features, batch_size=2)
    for key, tol in (("fp32", 1e-3), ("fp16", 5e-2)):
        d = trt_export[key].directory
        graphs = {"encoder": TrtGraph(d / "tensorrt" / "encoder.plan"), "head": TrtGraph(d / "tensorrt" / "head.plan")}
        got = run_backend(FAMILY, feat, model.config, graphs, features, batch_size=2)
        cmp = compare(ref.outputs, got.outputs, [x.title for x in docs])
        assert cmp.max_abs_logit_diff < tol, (key, cmp)
        if key == "fp32":
            assert cmp.relations_identical


def test_timing_cache_is_reused(trt_export, tmp_path):
    trt = _need_tensorrt()
    from docunet.engines.tensorrt import build_engine

    d = trt_export["fp32"].directory
    cache = d / "tensorrt" / "timing.cache"
    before = cache.stat().st_size
    profiles = trt_export["fp32"].manifest["tensorrt"]["profiles"]["head"]
    info = build_engine(trt, d / "head.onnx", tmp_path / "head.plan", profiles, trt_export["settings"], cache)
    assert info["bytes"] > 0 and cache.stat().st_size >= before
