"""The serving CPU decides the int8 weight width and bf16: detection, the fit check, names, torch auto precision."""
from __future__ import annotations

import pytest

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


def test_loading_an_export_that_does_not_fit_warns(monkeypatch, tmp_path, tokenizer):
    pytest.importorskip("onnxruntime")
    import json

    from docunet.checkpoint import save_checkpoint
    from docunet.export import ExportOptions, export_checkpoint
    from tests.conftest import tiny_model

    model, _ = tiny_model(tokenizer, seed=1)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    out = export_checkpoint(ckpt, tmp_path / "int8", ExportOptions(precision="int8", int8_reduce_range=False, threads=1)).directory
    man = json.loads((out / "manifest.json").read_text())
    assert man["precision_details"]["int8_weight_bits"] == 8 and "VNNI" in man["precision_details"]["int8_weights_fit"]
    monkeypatch.setattr(backends, "cpu_info", lambda: AVX2)
    with pytest.warns(backends.Int8FitWarning, match="saturate on this CPU"):
        b = backends.onnxruntime_backend(out, threads=1)
    assert b.name == "onnxruntime-int8-fused-w8"
    monkeypatch.setattr(backends, "cpu_info", lambda: VNNI_AMX)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", backends.Int8FitWarning)
        backends.onnxruntime_backend(out, threads=1)  # 8-bit weights fit VNNI / AMX: no warning


def test_torch_auto_precision_follows_the_cpu(monkeypatch, tmp_path, tokenizer):
    from docunet.checkpoint import save_checkpoint
    from tests.conftest import tiny_model

    model, _ = tiny_model(tokenizer, seed=1)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    monkeypatch.setattr(backends, "cpu_info", lambda: VNNI_AMX)
    assert backends.torch_backend(ckpt, precision="auto").name == "torch-bf16"
    monkeypatch.setattr(backends, "cpu_info", lambda: AVX2)
    assert backends.torch_backend(ckpt, precision="auto").name == "torch-fp32"
