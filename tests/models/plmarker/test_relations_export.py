"""PL-Marker relation model exported: the generic exporter reads the family's ExportSpec (text and object graphs),
validates them against PyTorch and writes the manifest; ONNX Runtime and torch serve SciERC-format (DyGIE) lines
with the same relations, through Runtime.load and docunet-run; int8 and fp16 variants validate and serve."""
from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from docunet.checkpoint import save_checkpoint
from docunet.inference import predict_documents
from docunet.runtime import Runtime
from tests.models.plmarker.test_relations import hand_doc, make, re_doc, to_dygie

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer):
    from docunet.export import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("re-export")
    model, feat = make(tokenizer, seed=7, max_pair_length=3, type_markers=True)
    ckpt = save_checkpoint(model, tokenizer, root / "ckpt")
    res = export_checkpoint(ckpt, root / "export", ExportOptions(threads=1, batch_size=2))
    docs = [hand_doc()] + [re_doc(random.Random(40 + i), f"d{i}", n_sents=2 + i % 2) for i in range(4)]
    return {"root": root, "model": model, "feat": feat, "ckpt": ckpt, "result": res, "docs": docs}


def _facts(preds) -> list[list[tuple]]:
    return [sorted((r.head, r.tail, r.label, r.sent_id, r.head_span, r.tail_span, r.head_type, r.tail_type) for r in p) for p in preds]


def test_export_validates_and_describes_itself(exported):
    m = exported["result"].manifest
    v = m["validation"]
    assert v["passed"] and v["samples"]["max_abs_logit_diff"] < 1e-4 and v["samples"]["facts_reference"] > 0
    assert set(m["graphs"]) == {"text", "objects"} and m["precision"] == "fp32"
    assert m["graphs"]["objects"]["dynamic_axes"]["obj_markers"] == {"0": "subjects", "1": "objects"}
    assert [x["name"] for x in m["graphs"]["objects"]["outputs"]] == ["re_logits", "ner_logits"]
    cfg = exported["model"].config
    assert m["model"]["relations"] == cfg.relations and m["model"]["marker_ids"] == cfg.marker_ids and m["model"]["type_markers"]
    docs = v["sample_documents"]
    # more objects in a sentence than one call takes (K = 3): several object groups per subject
    assert docs["synthetic-many-objects"]["objects"] > 3 * docs["synthetic-many-objects"]["subjects"]
    assert all(c["compatible"] for c in m["tensorrt"]["compatibility"].values()), m["tensorrt"]["compatibility"]


def test_runtimes_serve_scierc_lines_like_pytorch(exported):
    """DyGIE lines (gold entities) in, the PyTorch model's relations out, from ONNX Runtime and from the torch backend."""
    docs = exported["docs"]
    ref = predict_documents(exported["model"], exported["feat"], docs)
    assert sum(map(len, ref)) > 0
    lines = [to_dygie(d) for d in docs]
    ort = Runtime.load(exported["result"].directory, backend="onnxruntime", threads=1)
    assert ort.name.startswith("onnxruntime") and ort.family.model_type == "plmarker-re"
    got = list(ort.predict(lines, batch_size=2))
    assert all(p.error is None for p in got)
    assert _facts(p.relations for p in got) == _facts(ref)
    torch_rt = Runtime.load(exported["ckpt"], backend="torch", workers=2)  # one graph shared by two worker threads
    assert _facts(p.relations for p in torch_rt.predict(lines, batch_size=1)) == _facts(ref)
    r = got[0].relations[0]  # relation names from the input's spans
    assert r.head_name == docs[0].entities[r.head][0].name and r.tail_name == docs[0].entities[r.tail][0].name


def test_run_command_writes_the_relations_of_scierc_lines(exported, tmp_path):
    from docunet.cli.run import main as run_main

    data = tmp_path / "scierc.jsonl"
    data.write_text("".join(json.dumps(to_dygie(d)) + "\n" for d in exported["docs"]) + json.dumps({"sentences": [["x"]], "ner": []}) + "\n")
    outs = {}
    for name, model_dir in (("onnx", exported["result"].directory), ("torch", exported["ckpt"])):
        out = tmp_path / f"{name}.jsonl"
        res = CliRunner().invoke(run_main, [str(data), "--model", str(model_dir), "--out", str(out), "--no-progress"])
        assert res.exit_code == 1, res.output  # the last line is not a valid DyGIE document
        outs[name] = [json.loads(x) for x in out.read_text().splitlines()]
    recs = outs["onnx"]
    assert len(recs) == 6 and "ner" in recs[5]["error"] and all("error" not in r for r in recs[:5])
    assert recs[0]["title"] == "hand" and recs[0]["relations"] and {"h", "t", "h_name", "t_name", "r", "score"} <= set(recs[0]["relations"][0])
    strip = lambda rs: [[(x["h"], x["t"], x["r"]) for x in r.get("relations", [])] for r in rs]  # noqa: E731
    assert strip(recs) == strip(outs["torch"])


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_int8_and_fp16_variants_validate_and_serve(exported, tmp_path, precision):
    from docunet.export import ExportOptions, export_checkpoint

    res = export_checkpoint(exported["ckpt"], tmp_path / precision, ExportOptions(precision=precision, threads=1, batch_size=2,
                                                                                   fp32_from=str(exported["result"].directory)))
    m = res.manifest
    assert m["precision"] == precision and m["validation"]["passed"]
    assert {m["precision_details"]["text"], m["precision_details"]["objects"]} == {precision}
    assert m["validation"]["samples"]["pair_agreement"] > 0.8
    if precision == "int8":  # ONNX Runtime fusions (the int8 default): the object graph's feed-forward parts only
        assert m["precision_details"]["objects_fusion"]["fused"].get("BiasGelu") and "MultiHeadAttention" not in m["precision_details"]["objects_fusion"]["fused"]
    lines = [to_dygie(d) for d in exported["docs"]]
    got = list(Runtime.load(res.directory, backend="onnxruntime", threads=1).predict(lines))
    assert all(p.error is None for p in got) and sum(len(p.relations) for p in got) > 0
