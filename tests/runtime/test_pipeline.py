"""The raw-text pipeline: entity model -> coreference -> relation model, as a bundle exported with
`docunet-export --ner` and served by `Runtime.load` / `docunet-run` on text, mixed with DocRED documents."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from docunet.checkpoint import save_checkpoint
from docunet.documents import Relation
from docunet.pipeline.bundle import BundleError, read_bundle, write_bundle
from docunet.runtime import Runtime
from tests.conftest import as_dict, synthetic_document, tiny_model
from tests.models.plmarker.test_plmarker import make

TEXTS = ["Alice works for Acme in Paris. Alice met Bob in Berlin.", "Carol  founded Globex in\tOslo; Globex hired Dave."]
AWKWARD = ["\x00 alice\x01 works for acme\u2028in paris", "李明 works for acme in 北京 with alice 👍🏽 and bob",
           "أليس works for acme in paris with bob", "alice"]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, tokenizer):
    pytest.importorskip("onnxruntime")
    from docunet.cli.export import main as export_main

    root = tmp_path_factory.mktemp("pipeline")
    ner, _ = make(tokenizer, seed=11, max_seq_length=64)
    relations, _ = tiny_model(tokenizer, seed=12)
    save_checkpoint(ner, tokenizer, root / "ner-ckpt")
    save_checkpoint(relations, tokenizer, root / "rel-ckpt")
    res = CliRunner().invoke(export_main, ["--checkpoint", str(root / "rel-ckpt"), "--ner", str(root / "ner-ckpt"), "--out",
                                           str(root / "bundle"), "--threads", "1", "--quiet", "--setting", "coref.years=true"])
    assert res.exit_code == 0, res.output
    (root / "ckpt-bundle").mkdir()
    shutil.copytree(root / "ner-ckpt", root / "ckpt-bundle" / "ner")
    shutil.copytree(root / "rel-ckpt", root / "ckpt-bundle" / "relations")
    write_bundle(root / "ckpt-bundle")
    return root


def _facts(preds):
    return [(tuple((e.type, tuple((m.sent_id, m.start, m.end, m.start_char, m.end_char) for m in e.mentions)) for e in p.entities),
             sorted((r.head, r.tail, r.label) for r in p.relations)) if p.error is None else p.error for p in preds]


def test_exported_bundle_serves_text_like_the_checkpoints(bundles):
    ort = Runtime.load(bundles / "bundle", threads=1)
    torch_rt = Runtime.load(bundles / "ckpt-bundle", backend="torch")
    assert "pipeline[" in ort.name and "onnxruntime" in ort.name
    got, ref = list(ort.predict(TEXTS)), list(torch_rt.predict(TEXTS))
    assert _facts(got) == _facts(ref)
    for text, p in zip(TEXTS, got):
        assert p.entities and all(text[m.start_char:m.end_char] == m.text for e in p.entities for m in e.mentions)
        assert all(0 <= r.head < len(p.entities) and 0 <= r.tail < len(p.entities) for r in p.relations)
        spans = [(m.sent_id, m.start, m.end) for e in p.entities for m in e.mentions]
        assert len(spans) == len(set(spans))  # every mention in exactly one entity


def test_run_on_text_and_documents_one_line_each(bundles, tmp_path, monkeypatch):
    from docunet.cli.run import main as run_main
    from docunet.models.docunet.family import DocuNetFamily

    monkeypatch.setattr(DocuNetFamily, "max_mention_words", 200_000)  # the long text below is over it, the others not

    doc = synthetic_document(__import__("random").Random(0), "gold")
    lines = [json.dumps({"text": TEXTS[0], "id": "a"}), json.dumps(as_dict(doc)), json.dumps({"text": ""}), json.dumps({"text": ["x"]}),
             *(json.dumps({"text": t}) for t in AWKWARD), json.dumps({"text": "alice works . " * 3000})]
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(run_main, [str(inp), "--model", str(bundles / "bundle"), "--out", str(out), "--no-progress", "--threads", "1"])
    assert res.exit_code == 1, res.output  # two bad lines
    recs = [json.loads(x) for x in out.read_text().splitlines()]  # U+2028 in a mention's text is escaped: one line each
    assert len(recs) == len(lines) and recs[0]["title"] == "a"
    assert "no words" in recs[2]["error"] and "expected a string, got a list" in recs[3]["error"]
    texts = [TEXTS[0], None, None, None, *AWKWARD, "alice works . " * 3000]
    for rec, text in zip(recs, texts):
        if text is None or "error" in rec:
            continue
        assert {"title", "entities", "relations"} <= set(rec) <= {"title", "entities", "relations", "warning"}
        for e in rec["entities"]:
            assert {"id", "type", "name", "mentions"} <= set(e)
            assert all(text[m["start"]:m["end"]] == m["text"] for m in e["mentions"])
    gold = recs[1]  # a DocRED document keeps its entities
    assert [len(e["mentions"]) for e in gold["entities"]] == [len(m) for m in doc.entities]
    assert all("error" not in r for r in recs[4:])
    long = recs[-1]  # 3,000 sentences: every entity found, and a clear word on why there are no relations
    assert long["entities"] and long["relations"] == [] and "split the text" in long["warning"]


def test_bundle_manifest_catches_swapped_models(bundles, tmp_path):
    swapped = tmp_path / "swapped"
    shutil.copytree(bundles / "ckpt-bundle", swapped)
    cfg = swapped / "ner" / "config.json"
    cfg.write_text(cfg.read_text().replace('"max_span_width": 8', '"max_span_width": 7').replace('"max_span_width": 3', '"max_span_width": 2'))
    with pytest.raises(BundleError, match="ner model .* is not the one this bundle was made with"):
        read_bundle(swapped)


def test_predicted_mentions_map_back_to_gold_words():
    """Character offsets into the spaced text -> gold (sentence, word) spans; a mention that does not start and end
    on gold word boundaries of one sentence matches nothing (a false positive, not dropped)."""
    from docunet.documents import Document, Mention, PredictedEntity, PredictedRelation, PredictedSpan
    from docunet.e2e_metrics import e2e_scores
    from docunet.pipeline.evaluate import predicted_document

    gold = Document("g", [["Alice", "met", "Bob", "."], ["Bob", "left", "Paris", "."]],
                    [[Mention(0, 0, 1, "PER")], [Mention(0, 2, 3, "PER"), Mention(1, 0, 1, "PER")], [Mention(1, 2, 3, "LOC")]],
                    [Relation(0, 1, "P1")])
    text = gold.surface()
    assert text == "Alice met Bob . Bob left Paris ."

    def span(a, b, t="PER"):
        return PredictedSpan(-9, -9, -9, t, 0.9, text[a:b], a, b)

    entities = [PredictedEntity("PER", "Alice", (span(0, 5),)), PredictedEntity("PER", "Bob", (span(10, 13), span(16, 19))),
                PredictedEntity("LOC", "Pari", (span(25, 29, "LOC"),))]  # "Pari": not a gold word boundary
    doc = predicted_document(gold, entities, [PredictedRelation(0, 1, "P1", 0.9)])
    assert [[(m.sent_id, m.start, m.end) for m in e] for e in doc.entities] == [[(0, 0, 1)], [(0, 2, 3), (1, 0, 1)], [(-1, 25, 29)]]
    s = e2e_scores([gold], [doc])
    assert (s.mentions.num_correct, s.mentions.num_predicted, s.mentions.num_gold) == (3, 4, 4)
    assert (s.entities.num_correct, s.relations_strict.num_correct) == (2, 1)


def test_eval_scores_a_bundle_end_to_end(bundles, tmp_path):
    from docunet.cli.evaluate import main as eval_main
    from tests.conftest import to_docred

    docs = [synthetic_document(__import__("random").Random(i), f"g{i}") for i in range(3)]
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps(to_docred(d)) + "\n" for d in docs))
    res = CliRunner().invoke(eval_main, ["--model", str(bundles / "bundle"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["documents"] == 3 and report["failed"] == 0
    assert set(report["end_to_end"]) == {"mentions", "entities", "entities_typed", "relations", "relations_strict"}
    assert report["end_to_end"]["mentions"]["num_gold"] == sum(len(e) for d in docs for e in d.entities)
    assert "f1" in report["gold_entities"]["docred"]


def test_serving_settings_reach_the_right_model_and_are_checked(bundles):
    rt = Runtime.load(bundles / "ckpt-bundle", backend="torch", ner_settings={"prune_ratio": 0.3}, settings={"grid_fit": 6})
    assert rt.ner.config.prune_ratio == 0.3 and rt.relations.config.grid_fit == 6
    with pytest.raises(ValueError, match="not a serving setting of docunet models"):
        Runtime.load(bundles / "ckpt-bundle", backend="torch", settings={"prune_ratio": 0.3})
    with pytest.raises(ValueError, match="setting prune_ratio: expected a number, got 'x'"):
        Runtime.load(bundles / "ckpt-bundle" / "ner", backend="torch", settings={"prune_ratio": "x"})
    with pytest.raises(ValueError, match="prune_min_spans must be an integer >= 0, not 2.5"):
        Runtime.load(bundles / "ckpt-bundle" / "ner", backend="torch", settings={"prune_min_spans": 2.5})
    with pytest.raises(ValueError, match="drop the ner. prefix"):
        Runtime.load(bundles / "ckpt-bundle" / "ner", backend="torch", ner_settings={"prune_ratio": 0.3})


def test_bundle_carries_entity_model_settings_that_callers_override(bundles, tmp_path):
    from docunet.cli.export import main as export_main

    tuned = tmp_path / "tuned"
    shutil.copytree(bundles / "ckpt-bundle", tuned)
    write_bundle(tuned, ner_settings={"prior_correction": 0.25, "prune_ratio": 0.5})
    assert read_bundle(tuned).ner_settings == {"prior_correction": 0.25, "prune_ratio": 0.5}
    rt = Runtime.load(tuned, backend="torch", ner_settings={"prune_ratio": 0.3})
    assert (rt.ner.config.prior_correction, rt.ner.config.prune_ratio) == (0.25, 0.3)
    assert Runtime.load(bundles / "ckpt-bundle", backend="torch").ner.config.prior_correction == 1.0
    manifest = json.loads((tuned / "pipeline.json").read_text())
    manifest["settings"] = {"relations": {"grid_fit": 4}}
    (tuned / "pipeline.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"pipeline.json: field settings must be"):
        read_bundle(tuned)
    manifest["settings"] = {"ner": {"prior_correction": "high"}}
    (tuned / "pipeline.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="setting prior_correction: expected a number"):
        Runtime.load(tuned, backend="torch")
    # docunet-export checks a setting before it exports anything
    for bad, message in ((["--setting", "ner.bogus=1"], "bogus: not a serving setting of plmarker-ner"),
                         (["--setting", "prune_ratio=0.3"], "export records only a bundle's settings"),
                         (["--setting", "coref.cross_type=all"], "cross_type: expected none or exact or normalised"),
                         (["--setting", "ner.prior_correction=-1"], "prior_correction must be >= 0")):
        res = CliRunner().invoke(export_main, ["--checkpoint", str(bundles / "rel-ckpt"), "--ner", str(bundles / "ner-ckpt"),
                                               "--out", str(tmp_path / "never"), "--quiet", *bad])
        assert res.exit_code == 2 and message in res.output and not (tmp_path / "never").exists(), res.output


def test_text_in_one_case_comes_back_with_a_warning(bundles):
    """The entity model reads capitalisation: lower-case text gets its result and a warning saying so, through the
    pipeline (which keeps the entity model's warning) and from the entity model alone."""
    texts = ["alice smith works for acme in paris with bob", "Alice Smith works for Acme in Paris with Bob"]
    for rt in (Runtime.load(bundles / "ckpt-bundle", backend="torch"), Runtime.load(bundles / "ckpt-bundle" / "ner", backend="torch")):
        lower, written = list(rt.predict(texts))
        assert lower.error is None and "no capital letters" in lower.warning and "guessed" in lower.warning
        assert written.warning is None or "capital" not in written.warning
    # the setting reaches the featurizer (a serving setting that changes features, not only decoding)
    literal = Runtime.load(bundles / "ckpt-bundle" / "ner", backend="torch", settings={"one_case_shapes": "literal"})
    assert literal.featurizer.config.one_case_shapes == "literal" and "one_case_shapes=literal" in next(literal.predict(texts)).warning


def test_bundle_carries_coreference_rules_that_callers_override(bundles, tmp_path):
    from docunet.coref import CorefRules

    assert read_bundle(bundles / "bundle").coref == CorefRules(years=True)  # docunet-export --setting coref.years=true
    tuned = tmp_path / "tuned"
    shutil.copytree(bundles / "ckpt-bundle", tuned)
    write_bundle(tuned, coref=CorefRules(cross_type="none", demonyms=True))
    assert read_bundle(tuned).coref == CorefRules(cross_type="none", demonyms=True)
    rt = Runtime.load(tuned, backend="torch", coref_settings={"cross_type": "exact", "place_types": ["LOC", "MISC"]})
    assert rt.coref == CorefRules(cross_type="exact", demonyms=True, place_types=("LOC", "MISC"))
    with pytest.raises(ValueError, match="unknown coreference setting 'demonym'"):
        Runtime.load(tuned, backend="torch", coref_settings={"demonym": True})
    with pytest.raises(ValueError, match="coref.* settings apply to a pipeline bundle"):
        Runtime.load(tuned / "ner", backend="torch", coref_settings={"cross_type": "none"})
    manifest = json.loads((tuned / "pipeline.json").read_text())
    manifest["coref"]["rules"]["years"] = "yes"
    (tuned / "pipeline.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="field coref.rules: coreference setting years: expected true or false"):
        read_bundle(tuned)


def test_docred_documents_out_read_back_and_train_on(bundles, tmp_path):
    """--format docred-docs: one DocRED document per input line (errors keep their line), readable by every
    command: what a user corrects by hand and trains on."""
    from docunet.cli.run import main as run_main
    from docunet.readers import load_documents

    inp = tmp_path / "in.txt"
    inp.write_text(TEXTS[0] + "\n\n" + TEXTS[1] + "\n")
    out = tmp_path / "docs.jsonl"
    res = CliRunner().invoke(run_main, [str(inp), "--text", "--model", str(bundles / "bundle"), "--out", str(out), "--format",
                                        "docred-docs", "--no-progress", "--skip-errors", "--threads", "1"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 3 and "no words" in recs[1]["error"]
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(recs[0]) + "\n" + json.dumps(recs[2]) + "\n")
    docs = load_documents(good)
    assert [len(d.entities) for d in docs] == [len(r["vertexSet"]) for r in (recs[0], recs[2])]
    assert all(" ".join(d.sents[m.sent_id][m.start:m.end]).replace(" ", "") == m.name.replace(" ", "")
               for d in docs for e in d.entities for m in e)


def test_text_format_prints_entities_and_relations_for_people(bundles, tmp_path):
    from docunet.cli.run import main as run_main

    folder = tmp_path / "texts"
    folder.mkdir()
    for i, text in enumerate(TEXTS + [""]):
        (folder / f"{i}.txt").write_text(text)
    res = CliRunner().invoke(run_main, [str(folder), "--text", "--model", str(bundles / "bundle"), "--format", "text",
                                        "--no-progress", "--threads", "1", "--skip-errors"])
    assert res.exit_code == 0, res.output
    blocks = [b for b in res.stdout.split("\n\n") if b.strip()]
    assert [b.splitlines()[0] for b in blocks] == ["== line 1: 0", "== line 2: 1", "== line 3: 2"]
    preds = list(Runtime.load(bundles / "bundle", threads=1).predict(TEXTS))
    for block, p in zip(blocks, preds):
        assert f"entities ({len(p.entities)})" in block
        assert (f"relations ({len(p.relations)}):" if p.relations else "relations: none found") in block
        assert all(f"{r.head_name}  --" in block for r in p.relations)
    assert "error:" in blocks[2] and "no words" in blocks[2]


def test_int8_bundle_with_4bit_embeddings_is_small_verified_and_serves(bundles, tmp_path, monkeypatch):
    """The shipped model's form: int8 layers, 4-bit embedding tables, the entity model's two graphs sharing
    one weights file that the manifest hashes."""
    from docunet.artifacts import ManifestError, verify_manifest
    from docunet.cli.export import main as export_main

    monkeypatch.setattr("docunet.export.compact.MIN_TABLE_ELEMENTS", 1000)  # the tiny models' tables, as MiniLM's are
    out = tmp_path / "int8"
    res = CliRunner().invoke(export_main, ["--checkpoint", str(bundles / "rel-ckpt"), "--ner", str(bundles / "ner-ckpt"), "--out", str(out),
                                           "--precision", "int8", "--int8-embedding-bits", "4", "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    m = verify_manifest(out / "ner")
    assert "weights.bin" in m["files"]
    details = m["precision_details"]
    assert details["shared_weights"]["distinct"] < details["shared_weights"]["tensors"]  # the span graph reuses the text graph's layers
    assert details["text_embeddings"]["bits"] == 4 and details["spans_embeddings"]["bits"] == 4
    tables = details["text_embeddings"]["tables"]
    assert tables and all(t["bytes"] < t["fp32_bytes"] / 6 for t in tables.values())
    preds = list(Runtime.load(out, threads=1).predict(TEXTS))
    assert all(p.error is None and p.entities is not None for p in preds)
    with open(out / "ner" / "weights.bin", "r+b") as fh:  # a changed weights file is refused by name
        fh.seek(100)
        fh.write(b"\x01\x02\x03")
    with pytest.raises(ManifestError, match="weights.bin"):
        verify_manifest(out / "ner")


def test_output_lines_never_break_inside_a_record():
    """JSON leaves U+2028, U+2029 and U+0085 raw inside strings, and line readers split on them: records escape
    them, keep other non-ASCII text readable, and read back to the same text."""
    from docunet.runtime.writer import json_text

    record = {"text": "acme\u2028in paris\u2029and\x85 北京 é"}
    line = json_text(record)
    assert len(line.splitlines()) == 1 and "北京 é" in line and json.loads(line) == record

