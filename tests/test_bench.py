import json

import click
import pytest
from click.testing import CliRunner

from docunet.checkpoint import save_checkpoint
from docunet.cli.bench import main as bench_main

from tests.conftest import as_dict, many_entities_document, tiny_model


def test_bench_side_by_side_writes_json_markdown_and_chart(tokenizer, tmp_path):
    model, _ = tiny_model(tokenizer, seed=1)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(as_dict(many_entities_document(n, f"d{n}"))) for n in (3, 8, 12, 45)) + "\n")
    out = tmp_path / "bench"
    res = CliRunner().invoke(bench_main, ["--model", str(tmp_path / "ckpt"), "--docs", str(docs), "--n-docs", "4",
                                          "--backends", "torch-eager,torch+fit8+w2", "--batch-sizes", "1,2", "--threads", "1",
                                          "--out", str(out), "--soak", "12", "--soak-backend", "torch+fit8+w2", "--rounds", "2"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "bench.json").read_text())
    names = [r["name"] for r in report["results"]]
    assert names == ["torch-eager", "torch+fit8+w2"]
    ref, fast = report["results"]
    assert all(run["ratio_to_reference"] > 0 for run in fast["runs"])
    assert abs(ref["runs"][0]["ratio_to_reference"] - 1.0) < 1e-9
    b1 = fast["runs"][0]
    assert 0 < b1["latency_ms_p50"] <= b1["latency_ms_p99"] and {"encoder", "head", "merge_pool", "decode"} <= set(b1["stages"])
    assert fast["soak"] and fast["soak"][-1]["docs"] == 12
    assert all(len(run["docs_per_s_rounds"]) == 2 and run["docs_per_s"] in run["docs_per_s_rounds"] for run in fast["runs"])
    md = (out / "bench.md").read_text()
    assert md.count("| torch") == 4 and "2 rounds round-robin" in md and (out / "bench.png").stat().st_size > 1000


def test_rounds_report_the_median_run():
    from docunet.bench import combine_rounds

    def result(*dps):
        return {"name": "x", "peak_memory_gb": max(dps), "eval": {"f1": 0.5},
                "runs": [{"batch_size": b, "docs_per_s": d, "seconds": 1 / d} for b, d in zip((1, 8), dps)]}

    out = combine_rounds([result(3.0, 9.0), result(1.0, 7.0), result(2.0, 8.0)])
    assert [run["docs_per_s"] for run in out["runs"]] == [2.0, 8.0] and out["runs"][1]["seconds"] == 1 / 8.0
    assert out["runs"][0]["docs_per_s_rounds"] == [3.0, 1.0, 2.0] and out["peak_memory_gb"] == 9.0 and out["eval"] == {"f1": 0.5}
    assert combine_rounds([result(1.0, 2.0), result(5.0, 6.0)])["runs"][0]["docs_per_s"] == 1.0  # even count: lower middle


def test_backend_suffixes_set_grid_fit_and_workers():
    from docunet.bench import Spec

    spec = Spec.parse("torch+fit14+w2", "ckpt")
    assert (spec.name, spec.backend, spec.grid_fit, spec.workers) == ("torch+fit14+w2", "torch", 14, 2)
    assert Spec.parse("torch-eager+w2", "ckpt").workers == 2 and Spec.parse("torch", "ckpt").workers == 1


def test_names_say_which_int8_weights_and_precision_run_on_this_cpu(monkeypatch, tmp_path):
    """An 8-bit int8 export: -w7from8 where the CPU lacks VNNI, -w8 as exported or where it fits;
    +weights= picks; torch-auto is named by the precision it resolves to."""
    from docunet import bench
    from docunet.bench import Spec
    from docunet.cli.bench import _backends
    from tests.engines.test_cpu import AVX2, VNNI_AMX, manifest

    (tmp_path / "manifest.json").write_text(json.dumps(manifest(8)))
    ort = f"onnxruntime@{tmp_path}"
    monkeypatch.setattr(bench, "cpu_info", lambda: AVX2)
    assert Spec.parse(ort, "ckpt").name == "onnxruntime-int8-all-fused-w7from8"
    spec = Spec.parse(f"{ort}+weights=as-exported+fit14+w2", "ckpt")
    assert (spec.name, spec.int8_weights, spec.grid_fit, spec.workers) == ("onnxruntime-int8-all-fused-w8+fit14+w2", "as-exported", 14, 2)
    assert Spec.parse("torch-auto", "ckpt").name == "torch-auto-fp32"
    monkeypatch.setattr(bench, "cpu_info", lambda: VNNI_AMX)
    assert Spec.parse(ort + "+w2", "ckpt").name == "onnxruntime-int8-all-fused-w8+w2"
    assert Spec.parse(ort + "+weights=w7+w2", "ckpt").name == "onnxruntime-int8-all-fused-w7from8+w2"
    assert Spec.parse("torch-auto", "ckpt").precision == "auto" and Spec.parse("torch-auto", "ckpt").name == "torch-auto-bf16"
    with pytest.raises(click.BadParameter, match="both run onnxruntime-int8-all-fused-w8"):
        _backends(None, None, f"{ort},{ort}+weights=as-exported")  # the same weights here: one row would repeat the other
    with pytest.raises(click.BadParameter, match="unknown int8_weights"):
        _backends(None, None, f"{ort}+weights=w6")


def test_bench_serves_entity_models_with_pruning_and_the_dense_pass(tokenizer, tmp_path):
    """An entity (PL-Marker NER) checkpoint: the dense packed pass, the text-once pass and a pruned one side by
    side, each with its mention F1; ratios over the first backend listed (no torch-eager in the list)."""
    import random

    from tests.models.plmarker.test_plmarker import make, ner_doc
    from tests.conftest import to_docred

    model, _ = make(tokenizer, seed=2)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(to_docred(ner_doc(random.Random(i), f"d{i}"))) + "\n" for i in range(4)))
    out = tmp_path / "bench"
    res = CliRunner().invoke(bench_main, ["--model", str(tmp_path / "ckpt"), "--docs", str(docs), "--n-docs", "4", "--backends",
                                          "torch+dense,torch,torch+prune0.5", "--batch-sizes", "2", "--threads", "1", "--out", str(out),
                                          "--eval-data", str(docs)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "bench.json").read_text())
    dense, text_once, pruned = report["results"]
    assert report["reference"] == "torch+dense" and dense["runs"][0]["ratio_to_reference"] == 1.0
    assert dense["eval"]["f1"] == text_once["eval"]["f1"] and pruned["eval"]["num_predicted"] <= text_once["eval"]["num_predicted"]
    assert "dev mention F1 (typed)" in (out / "bench.md").read_text()
