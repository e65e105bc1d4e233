"""The serving CPU decides the int8 weight width and bf16: detection, the fit check, names, torch auto precision."""
from __future__ import annotations

import contextlib
import dataclasses
import warnings

import pytest
import torch

from docunet.artifacts import export_label, int8_weight_bits
from docunet.engines.cpu import parse_cpuinfo
from docunet.runtime import backends

AVX2 = parse_cpuinfo("model name : AMD EPYC 7B12\nflags : fpu sse2 avx avx2 fma\n", "x86_64")
VNNI_AMX = parse_cpuinfo("model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: avx2 avx512f avx512_vnni amx_tile amx_int8 amx_bf16\n",
                         "x86_64")
GRAVITON = parse_cpuinfo("processor : 0\nFeatures : fp asimd asimddp\n", "aarch64")


def manifest(bits: int | None, head_int8: bool = True) -> dict:
    if bits is None:
        return {"precision": "fp32", "graphs": {"encoder": {"precision": "fp32"}, "head": {"precision": "fp32"}}}
    return {"precision": "int8", "precision_details": {"int8_weight_bits": bits, "encoder_fusion": {"fused": {"x": 1}}},
            "graphs": {"encoder": {"precision": "int8"}, "head": {"precision": "int8" if head_int8 else "fp32"}}}


def test_cpu_kinds_and_what_fits():
    assert (AVX2.kind, AVX2.int8_weight_bits, AVX2.bf16) == ("AVX2", 7, False)
    assert (VNNI_AMX.kind, VNNI_AMX.int8_weight_bits, VNNI_AMX.bf16) == ("AMX", 8, True)
    assert (GRAVITON.kind, GRAVITON.int8_weight_bits) == ("ARM", 8)
    assert VNNI_AMX.describe() == "Intel(R) Xeon(R) Platinum 8480+ (AMX)"


def test_the_weight_width_is_in_the_name_and_the_fit_is_checked():
    assert export_label(manifest(7)) == "int8-all-fused-w7" and export_label(manifest(8, head_int8=False)) == "int8-fused-w8"
    assert export_label(manifest(None)) == "fp32"
    legacy = {"precision": "int8", "precision_details": {"encoder_quantization": {"reduce_range": True}}}
    assert int8_weight_bits(legacy) == 7  # exports made before the width was recorded
    assert "saturate on this CPU" in backends.int8_fit_problem(manifest(8), AVX2)
    assert backends.int8_fit_problem(manifest(7), AVX2) is None
    assert "--int8-weight-bits 8" in backends.int8_fit_problem(manifest(7), VNNI_AMX)
    assert backends.int8_fit_problem(manifest(8), VNNI_AMX) is None and backends.int8_fit_problem(manifest(8), GRAVITON) is None
    assert backends.int8_fit_problem(manifest(None), AVX2) is None


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tokenizer):
    """A checkpoint and its fp32, int8-all (8-bit weights, the default) and int8-all 7-bit exports."""
    pytest.importorskip("onnxruntime")
    from docunet.checkpoint import save_checkpoint
    from docunet.export import ExportOptions, export_checkpoint
    from tests.conftest import tiny_model

    root = tmp_path_factory.mktemp("fit")
    model, _ = tiny_model(tokenizer, seed=1)
    ckpt = save_checkpoint(model, tokenizer, root / "ckpt")
    fp32 = export_checkpoint(ckpt, root / "fp32", ExportOptions(threads=1)).directory
    int8 = {bits: export_checkpoint(ckpt, root / f"w{bits}", ExportOptions(precision="int8", int8_head=True, threads=1,
                                                                          int8_reduce_range=bits == 7, fp32_from=str(fp32))).directory
            for bits in (8, 7)}
    return {"ckpt": ckpt, "fp32": fp32, 8: int8[8], 7: int8[7]}


def _scores(backend) -> list:
    """Every document's logits through the backend's graphs (deterministic: one thread)."""
    import random

    from docunet.export.validate import run_backend
    from tests.conftest import synthetic_document

    rng = random.Random(3)
    docs = [synthetic_document(rng, f"d{i}", n_filler=rng.choice([0, 5, 20]), n_pairs=3) for i in range(8)]
    features = backend.family.featurize(backend.featurizer, docs)
    return [o.scores for o in run_backend(backend.family, backend.featurizer, backend.config, backend.graphs, features).outputs]


@contextlib.contextmanager
def _no_fit_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", backends.Int8FitWarning)
        yield


def _mean_diff(a: list, b: list) -> float:
    return float(torch.cat([(x - y).abs().flatten() for x, y in zip(a, b)]).mean())


def _same(a: list, b: list) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_an_8bit_export_is_served_with_weights_that_fit_the_cpu(monkeypatch, exports):
    """AVX2: the 8-bit weights are requantized to 7 bits in memory (-w7from8, no warning; the files stay
    as hashed); AMX: served as exported. int8_weights="as-exported" keeps them on AVX2, with the warning."""
    from docunet.artifacts import verify_manifest
    from docunet.engines.cpu import cpu_info
    from docunet.engines.int8_weights import open_7bit

    out = exports[8]
    details = verify_manifest(out)["precision_details"]
    assert details["int8_weight_bits"] == 8
    assert "requantized to 7 bits" in details["int8_weights_fit"]
    assert details["int8_weights_requantized_to_7bit_at_load"]["encoder"] > 0 and details["int8_weights_requantized_to_7bit_at_load"]["head"] > 0
    assert details["int8_validated_with"]["weight_bits"] == cpu_info().int8_weight_bits  # validated as served here

    monkeypatch.setattr(backends, "cpu_info", lambda: AVX2)
    with _no_fit_warning():
        served = backends.onnxruntime_backend(out, threads=1)
    assert served.name == "onnxruntime-int8-all-fused-w7from8"
    with pytest.warns(backends.Int8FitWarning, match="saturate on this CPU"):
        as_exported = backends.onnxruntime_backend(out, threads=1, int8_weights="as-exported")
    assert as_exported.name == "onnxruntime-int8-all-fused-w8"
    got, eight = _scores(served), _scores(as_exported)
    seven_bit_graphs = {name: open_7bit(out / g["file"], threads=1)[0] for name, g in verify_manifest(out)["graphs"].items()}
    assert _same(got, _scores(dataclasses.replace(served, graphs=seven_bit_graphs)))
    assert not _same(got, eight)  # 7-bit weights really run
    fp32 = _scores(backends.onnxruntime_backend(exports["fp32"], threads=1))
    seven = _scores(backends.onnxruntime_backend(exports[7], threads=1))
    # as close to fp32 as the export made with 7-bit weights (measured on this tiny model: 1.02x its mean logit error)
    assert _mean_diff(got, fp32) <= 1.5 * _mean_diff(seven, fp32), (_mean_diff(got, fp32), _mean_diff(seven, fp32))
    assert backends.load_backend(out, threads=1).name == served.name  # what "auto" serves

    monkeypatch.setattr(backends, "cpu_info", lambda: VNNI_AMX)
    with _no_fit_warning():
        amx = backends.onnxruntime_backend(out, threads=1)
    assert amx.name == "onnxruntime-int8-all-fused-w8"
    assert _same(_scores(amx), eight)
    assert backends.onnxruntime_backend(out, threads=1, int8_weights="w7").name == "onnxruntime-int8-all-fused-w7from8"


def test_a_7bit_export_warns_where_8bit_weights_fit(monkeypatch, exports):
    monkeypatch.setattr(backends, "cpu_info", lambda: VNNI_AMX)
    with pytest.warns(backends.Int8FitWarning, match="--int8-weight-bits 8"):
        b = backends.onnxruntime_backend(exports[7], threads=1)
    assert b.name == "onnxruntime-int8-all-fused-w7"  # bits cannot be recovered
    monkeypatch.setattr(backends, "cpu_info", lambda: AVX2)
    with _no_fit_warning():
        assert backends.onnxruntime_backend(exports[7], threads=1).name == "onnxruntime-int8-all-fused-w7"
    with pytest.raises(ValueError, match="unknown int8_weights"):
        backends.onnxruntime_backend(exports[7], threads=1, int8_weights="w6")


def test_auto_backend_picks_the_fastest_path_for_the_cpu(monkeypatch, exports):
    """A checkpoint: torch, bf16 with AMX (precision None means auto under the auto backend, fp32 when
    torch is named); an export: ONNX Runtime."""
    monkeypatch.setattr(backends, "cpu_info", lambda: VNNI_AMX)
    assert backends.load_backend(exports["ckpt"]).name == "torch-bf16"
    assert backends.load_backend(exports["ckpt"], backend="torch").name == "torch-fp32"
    assert backends.load_backend(exports["fp32"], threads=1).name == "onnxruntime-fp32"
    monkeypatch.setattr(backends, "cpu_info", lambda: AVX2)
    assert backends.load_backend(exports["ckpt"]).name == "torch-fp32"


def test_the_export_validates_int8_weights_as_this_cpu_serves_them():
    pytest.importorskip("onnxruntime")
    from docunet.export.exporter import ExportOptions, int8_validation_weights

    eight, seven = ExportOptions(precision="int8"), ExportOptions(precision="int8", int8_reduce_range=True)
    assert int8_validation_weights(eight, AVX2) == {"weight_bits": 7, "requantized_from": 8, "cpu": AVX2.describe()}
    assert int8_validation_weights(eight, VNNI_AMX)["weight_bits"] == 8 and int8_validation_weights(eight, VNNI_AMX)["requantized_from"] is None
    assert int8_validation_weights(seven, VNNI_AMX)["weight_bits"] == 7 and int8_validation_weights(ExportOptions(), AVX2) is None
