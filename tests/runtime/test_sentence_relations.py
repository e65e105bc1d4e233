"""PL-Marker's two stages together: docunet-eval's Ent / Rel / Rel+ of a plmarker-re model with gold entities and with
the entities a plmarker-ner model predicts (the seed's --use_ner_results), and a bundle of both (no coreference step)
exported with `docunet-export --ner` and served by `Runtime.load` / `docunet-run` on text and on SciERC-format lines."""
from __future__ import annotations

import dataclasses
import json
import random
import shutil

import pytest
from click.testing import CliRunner

from docunet.checkpoint import load_checkpoint, save_checkpoint
from docunet.documents import PredictedSpan
from docunet.inference import predict_documents
from docunet.models.plmarker.re_decode import relation_report
from docunet.pipeline.bundle import read_bundle, write_bundle
from docunet.pipeline.sentence_relations import mention_document
from docunet.runtime import Runtime
from docunet.runtime.pipeline import _has_entities
from docunet.training import TrainArgs, train
from tests.conftest import tiny_model
from tests.models.plmarker import test_plmarker as ner_tests
from tests.models.plmarker.test_relations import make, re_doc, to_dygie

TEXTS = ["Alice and Bob works for Acme. Carol was born in Paris.", "the company globex is in oslo .", "nothing here ."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tokenizer):
    """A tiny entity model and a tiny relation model trained on the same sentences (seconds each), their checkpoints,
    an exported bundle and a checkpoint bundle, and held-out SciERC-format (DyGIE) data."""
    pytest.importorskip("onnxruntime")
    from docunet.cli.export import main as export_main

    root = tmp_path_factory.mktemp("sentence-relations")
    docs = [re_doc(random.Random(100 + i), f"t{i}") for i in range(10)]
    ner, ner_feat = ner_tests.make(tokenizer, seed=3, max_pair_length=16, max_seq_length=64)
    train(ner, ner_feat, docs, docs, TrainArgs(epochs=20, batch_size=4, lr_encoder=3e-3, lr_classifier=3e-3, warmup_ratio=0.05, seed=3),
          root / "ner-ckpt", progress=False)
    rel, rel_feat = make(tokenizer, seed=2)
    train(rel, rel_feat, docs, docs, TrainArgs(epochs=10, batch_size=8, lr_encoder=1e-2, lr_classifier=1e-2, warmup_ratio=0.05, seed=2),
          root / "re-ckpt", progress=False)
    res = CliRunner().invoke(export_main, ["--checkpoint", str(root / "re-ckpt"), "--ner", str(root / "ner-ckpt"), "--out",
                                           str(root / "bundle"), "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    (root / "ckpt-bundle").mkdir()
    shutil.copytree(root / "ner-ckpt", root / "ckpt-bundle" / "ner")
    shutil.copytree(root / "re-ckpt", root / "ckpt-bundle" / "relations")
    write_bundle(root / "ckpt-bundle", coref=None)
    gold = [re_doc(random.Random(200 + i), f"e{i}") for i in range(6)]
    data = root / "eval.jsonl"
    data.write_text("".join(json.dumps(to_dygie(d)) + "\n" for d in gold))
    return {"root": root, "gold": gold, "data": data}


def _counts(report: dict) -> dict:
    """(predicted, gold, correct) of each score of a report (P/R/F1 follow from them)."""
    return {k: (v["predicted"], v["gold"], v["correct"]) for k, v in report.items() if k in ("ent", "rel", "rel+")}


def _eval(*args: str) -> dict:
    from docunet.cli.evaluate import main as eval_main

    res = CliRunner().invoke(eval_main, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def test_eval_reports_ent_rel_and_rel_plus_on_gold_and_predicted_entities(trained):
    root, gold = trained["root"], trained["gold"]
    rel, rel_feat = load_checkpoint(root / "re-ckpt")
    ner, ner_feat = load_checkpoint(root / "ner-ckpt")
    unlabelled = [dataclasses.replace(d, relations=None) for d in gold]
    with_gold = relation_report(gold, predict_documents(rel, rel_feat, unlabelled), rel.config.symmetric)
    report = _eval("--model", str(root / "re-ckpt"), "--data", str(trained["data"]))
    assert report["entities"] == "gold" and report["ent"]["f1"] == 1.0 and report["failed"] == 0
    assert _counts(report) == _counts(with_gold) and report["rel"]["f1"] == with_gold["rel"]["f1"] > 0.5
    # --ner: the entity model sees the words only; its mentions are the relation model's entities
    bare = [dataclasses.replace(d, entities=[], relations=None) for d in gold]
    mentions = predict_documents(ner, ner_feat, bare)
    entity_docs = [mention_document(d, m) for d, m in zip(bare, mentions)]
    expected = relation_report(gold, predict_documents(rel, rel_feat, entity_docs), rel.config.symmetric, entity_docs)
    report = _eval("--model", str(root / "re-ckpt"), "--data", str(trained["data"]), "--ner", str(root / "ner-ckpt"))
    assert report["entities"] == "predicted" and _counts(report) == _counts(expected)
    assert 0.5 < report["ent"]["f1"] < 1.0 and report["ent"]["predicted"] == sum(map(len, mentions))
    assert _counts(report["gold_entities"]) == _counts({k: with_gold[k] for k in ("rel", "rel+")})
    assert report["rel+"]["correct"] <= report["rel"]["correct"]
    # a bundle of the two exports scores the same (the entity step given the gold words, as --ner)
    bundled = _eval("--model", str(root / "bundle"), "--data", str(trained["data"]))
    assert _counts(bundled) == _counts(report) and _counts(bundled["gold_entities"]) == _counts(report["gold_entities"])


def test_eval_and_export_refuse_what_does_not_fit(trained, tokenizer, tmp_path):
    from docunet.cli.evaluate import main as eval_main
    from docunet.cli.export import main as export_main

    root = trained["root"]
    docunet_model, _ = tiny_model(tokenizer, seed=1)
    save_checkpoint(docunet_model, tokenizer, tmp_path / "docunet")
    res = CliRunner().invoke(eval_main, ["--model", str(tmp_path / "docunet"), "--data", str(trained["data"]), "--ner", str(root / "ner-ckpt")])
    assert res.exit_code == 2 and "sentence-level relation models" in res.output
    res = CliRunner().invoke(eval_main, ["--model", str(root / "re-ckpt"), "--data", str(trained["data"]), "--ner", str(root / "re-ckpt")])
    assert res.exit_code == 2 and "not an entity model" in res.output
    res = CliRunner().invoke(eval_main, ["--model", str(root / "re-ckpt"), "--data", str(trained["data"]), "--write-predictions",
                                         str(tmp_path / "p.json")])
    assert res.exit_code == 2 and "DocRED submission" in res.output
    res = CliRunner().invoke(export_main, ["--checkpoint", str(root / "ner-ckpt"), "--ner", str(root / "ner-ckpt"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "relation model" in res.output


def _facts(preds) -> list:
    return [(tuple((e.type, tuple((m.sent_id, m.start, m.end, m.start_char, m.end_char) for m in e.mentions)) for e in p.entities),
             sorted((r.head, r.tail, r.label) for r in p.relations)) if p.error is None else p.error for p in preds]


def test_bundle_serves_text_without_coreference(trained):
    root = trained["root"]
    assert read_bundle(root / "bundle").coref is None
    assert json.loads((root / "bundle" / "pipeline.json").read_text())["coref"] == {"method": "none"}
    ort = Runtime.load(root / "bundle", threads=1)
    assert "onnxruntime" in ort.name and ort.relations.family.model_type == "plmarker-re"
    got, ref = list(ort.predict(TEXTS)), list(Runtime.load(root / "ckpt-bundle", backend="torch").predict(TEXTS))
    assert _facts(got) == _facts(ref)
    p = got[0]
    assert all(len(e.mentions) == 1 for e in p.entities)  # every span an entity of its own, in reading order
    spans = [(e.mentions[0].sent_id, e.mentions[0].start) for e in p.entities]
    assert spans == sorted(spans) and all(TEXTS[0][m.start_char:m.end_char] == m.text for e in p.entities for m in e.mentions)
    found = {(p.entities[r.head].name.lower(), r.label, p.entities[r.tail].name.lower()) for r in p.relations}
    assert ("bob", "employer", "acme") in found and ("carol", "birthplace", "paris") in found
    assert got[2].error is None and got[2].relations == []


def test_run_writes_spans_and_relations_for_text_and_scierc_lines(trained, tmp_path):
    """Text lines and SciERC lines in one file: a line with entity spans keeps them (gold entities), a line whose
    `ner` lists are empty gets the entity model's spans."""
    from docunet.cli.run import main as run_main

    root, gold = trained["root"], trained["gold"]
    given, empty = to_dygie(gold[0]), {**to_dygie(gold[1]), "ner": [[] for _ in gold[1].sents], "relations": []}
    assert _has_entities(given) and not _has_entities(empty) and _has_entities({"sentences": [["x"]], "ner": "bad"})
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in [{"text": TEXTS[0], "id": 1}, given, empty]) + "\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(run_main, [str(data), "--model", str(root / "bundle"), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 3 and recs[0]["title"] == "1"
    for rec in recs:
        assert rec["relations"] and all(0 <= r["h"] < len(rec["entities"]) and 0 <= r["t"] < len(rec["entities"]) for r in rec["relations"])
        assert all(len(e["mentions"]) == 1 and {"start", "end", "text", "sent", "words"} <= set(e["mentions"][0]) for e in rec["entities"])
    assert all(TEXTS[0][m["start"]:m["end"]] == m["text"] for e in recs[0]["entities"] for m in e["mentions"])
    gold_spans = sorted((m.sent_id, m.start, m.end) for e in gold[0].entities for m in e)
    assert sorted((e["mentions"][0]["sent"], *e["mentions"][0]["words"]) for e in recs[1]["entities"]) == gold_spans
    assert all("score" not in e["mentions"][0] for e in recs[1]["entities"])  # given, not predicted
    assert all("score" in e["mentions"][0] for e in recs[2]["entities"])  # predicted by the entity model


def test_mention_document_makes_one_entity_per_mention():
    doc = re_doc(random.Random(1), "d")
    spans = [PredictedSpan(0, 0, 1, "PER", 0.9, "x"), PredictedSpan(0, 0, 1, "ORG", 0.5, "x"), PredictedSpan(1, 2, 3, "LOC", 0.7, "y")]
    out = mention_document(doc, spans)
    assert out.relations is None and out.sents == doc.sents
    assert [[(m.sent_id, m.start, m.end, m.type, m.name) for m in e] for e in out.entities] == [
        [(0, 0, 1, "PER", "x")], [(0, 0, 1, "ORG", "x")], [(1, 2, 3, "LOC", "y")]]
