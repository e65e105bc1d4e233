"""The runtime and docunet-run: same relations as the reference, order, bad input, resume, big grids."""
import json
import random

import pytest
import torch
from click.testing import CliRunner

from docunet.checkpoint import save_checkpoint
from docunet.cli.run import main as run_main
from docunet.inference import predict_documents
from docunet.models.docunet.batching import collate_features
from docunet.runtime import BadInput, Runtime
from tests.conftest import as_dict, many_entities_document, synthetic_document, tiny_model


@pytest.fixture(scope="module")
def checkpoint(tokenizer, tmp_path_factory):
    model, feat = tiny_model(tokenizer, seed=5, top_k=2)
    path = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(model, tokenizer, path)
    return path


@pytest.fixture(scope="module")
def docs():
    rng = random.Random(7)
    out = [synthetic_document(rng, f"d{i}", n_filler=rng.choice([0, 2, 9, 40]), n_pairs=rng.choice([1, 2, 3])) for i in range(13)]
    out.insert(5, many_entities_document(50, "crowd"))  # a >42-entity document in the middle
    return out


def test_runtime_matches_reference_in_input_order(checkpoint, docs):
    rt = Runtime.load(checkpoint, backend="torch")
    from docunet.checkpoint import load_checkpoint
    model, feat = load_checkpoint(checkpoint)
    ref = predict_documents(model, feat, docs, batch_size=1)
    for chunk_batches in (1, 16):
        rt.chunk_batches = chunk_batches
        got = list(rt.predict(docs, batch_size=4))
        assert [p.index for p in got] == list(range(len(docs)))
        assert [p.title for p in got] == [d.title for d in docs]
        for p, r in zip(got, ref):
            assert p.ok and {(x.head, x.tail, x.label) for x in p.relations} == {(x.head, x.tail, x.label) for x in r}
            for a, b in zip(sorted(p.relations, key=lambda x: (x.head, x.tail, x.label)), sorted(r, key=lambda x: (x.head, x.tail, x.label))):
                assert abs(a.score - b.score) < 1e-4
    assert sum(len(p.relations) for p in got) > 0
    crowd = got[5]
    assert crowd.title == "crowd" and max(max(r.head, r.tail) for r in crowd.relations) >= 42  # entities past 42 are scored


def test_eager_reference_gives_the_same_relations(checkpoint, docs):
    fast = list(Runtime.load(checkpoint, backend="torch").predict(docs[:6]))
    slow = list(Runtime.load(checkpoint, backend="torch", attention="eager").predict(docs[:6]))
    for a, b in zip(fast, slow):
        assert {(x.head, x.tail, x.label) for x in a.relations} == {(x.head, x.tail, x.label) for x in b.relations}


def test_bad_documents_get_errors_and_never_fail_the_batch(checkpoint, docs):
    good = as_dict(docs[0])
    items = [good, {"title": "no sents", "vertexSet": []}, dict(good, vertexSet=[]), dict(good, vertexSet=good["vertexSet"][:1]),
             BadInput("x:5", "not valid JSON"), as_dict(docs[1])]
    got = list(Runtime.load(checkpoint, backend="torch").predict(items, batch_size=8))
    assert [p.ok for p in got] == [True, False, False, False, False, True]
    assert got[1].error == "item 2: required field is missing (field sents; title 'no sents')"
    assert "at least 2" in got[2].error and "at least 2" in got[3].error
    assert got[4].error == "x:5: not valid JSON"


def write_input(path, docs):
    lines = [json.dumps(as_dict(d)) for d in docs]
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return lines


def test_cli_error_records_summary_and_exit_status(checkpoint, docs, tmp_path):
    good = json.dumps(as_dict(docs[0]))
    bad_span = as_dict(docs[1])
    bad_span["vertexSet"][0][0]["pos"] = [0, 99]
    lines = [good.encode(), b"{not json", json.dumps({"title": "t", "sents": [["a"]]}).encode(), json.dumps(bad_span).encode(),
             json.dumps({"title": "empty", "sents": [], "vertexSet": []}).encode(), b"\xff\xfe bytes", good.encode()]
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(run_main, [str(inp), "--model", str(checkpoint), "--out", str(out), "--backend", "torch", "--no-progress"])
    assert res.exit_code == 1
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 7 and recs[0]["title"] == recs[6]["title"] == docs[0].title
    assert [r.get("line") for r in recs] == [None, 2, 3, 4, 5, 6, None]
    assert recs[1]["error"] == f"{inp}:2: not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    assert recs[2]["error"] == (f"{inp}:3: this model needs 2 entities per document, given as a DocRED vertexSet; for text without "
                                "entities use an entity model (plmarker-ner) or a pipeline bundle (field vertexSet; title 't')")
    assert "in.jsonl:4" in recs[3]["error"] and "pos" in recs[3]["error"] and "empty document" in recs[4]["error"]
    assert "not UTF-8" in recs[5]["error"]
    rel = recs[0]["relations"][0]
    assert set(rel) == {"h", "t", "h_name", "t_name", "r", "relation", "score", "margin"}
    assert 0 < rel["score"] < 1 and (rel["score"] > 0.5) == (rel["margin"] > 0)
    assert "5 failed" in res.output  # summary on stderr (CliRunner mixes the streams)
    res = CliRunner().invoke(run_main, [str(inp), "--model", str(checkpoint), "--out", str(out), "--backend", "torch", "--no-progress",
                                        "--skip-errors", "--overwrite"])
    assert res.exit_code == 0


def test_cli_resume_neither_duplicates_nor_loses(checkpoint, docs, tmp_path):
    inp = tmp_path / "in.jsonl"
    write_input(inp, docs)
    full = tmp_path / "full.jsonl"
    args = ["--model", str(checkpoint), "--backend", "torch", "--no-progress", "--batch-size", "3"]
    assert CliRunner().invoke(run_main, [str(inp), "--out", str(full), *args]).exit_code == 0
    expected = full.read_text().splitlines()
    assert len(expected) == len(docs)
    part = tmp_path / "part.jsonl"
    part.write_text("\n".join(expected[:6]) + "\n" + expected[6][:17])  # interrupted mid-line
    res = CliRunner().invoke(run_main, [str(inp), "--out", str(part), "--resume", *args])
    assert res.exit_code == 0, res.output
    assert part.read_text().splitlines() == expected


def test_cli_docred_format_and_stdin(checkpoint, docs, tmp_path):
    lines = write_input(tmp_path / "in.jsonl", docs[:3])
    res = CliRunner().invoke(run_main, ["-", "--model", str(checkpoint), "--backend", "torch", "--no-progress", "--format", "docred"],
                             input="\n".join(lines) + "\n")
    assert res.exit_code == 0, res.output
    body = res.output[res.output.index("["): res.output.rindex("]") + 1]
    sub = json.loads(body)
    assert sub and set(sub[0]) == {"title", "h_idx", "t_idx", "r"}


def test_missing_tensorrt_is_a_clear_error(checkpoint):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    from docunet.runtime import BackendUnavailable
    with pytest.raises(BackendUnavailable, match="pip install"):
        Runtime.load(checkpoint, backend="tensorrt", device="cuda")


def test_onnxruntime_backend_gives_the_reference_relations(checkpoint, docs, tmp_path):
    pytest.importorskip("onnxruntime")
    from docunet.export import export_checkpoint

    out = tmp_path / "export"
    export_checkpoint(checkpoint, out)
    ref = list(Runtime.load(checkpoint, backend="torch").predict(docs, batch_size=4))
    ort_rt = Runtime.load(out, backend="onnxruntime", threads=1)
    assert ort_rt.name == "onnxruntime-fp32" and Runtime.load(out).name == "onnxruntime-fp32"  # auto picks ORT for an export on CPU
    got = list(ort_rt.predict(docs, batch_size=4))
    assert [p.title for p in got] == [d.title for d in docs]
    for a, b in zip(got, ref):
        assert {(x.head, x.tail, x.label) for x in a.relations} == {(x.head, x.tail, x.label) for x in b.relations}
    # the torch backend also opens an export directory through its source checkpoint
    assert Runtime.load(out, backend="torch").name == "torch-fp32"
    # IO binding (the GPU path: ORT reads and writes torch's memory) gives the very same outputs
    enc, head = ort_rt.backend.graphs["encoder"], ort_rt.backend.graphs["head"]
    batch = collate_features(ort_rt.featurizer, ort_rt.featurizer(docs[:4]))
    plain = enc(batch.input_ids, batch.attention_mask, batch.query_pos)
    bound = enc.run_bound(batch.input_ids, batch.attention_mask, batch.query_pos)
    assert bound is not None and all(torch.equal(a, b) for a, b in zip(plain, bound))
    enc.io_binding = head.io_binding = True
    again = list(ort_rt.predict(docs, batch_size=4))
    assert [[(x.head, x.tail, x.label, x.score) for x in p.relations] for p in again] == \
           [[(x.head, x.tail, x.label, x.score) for x in p.relations] for p in got]
    enc.io_binding = head.io_binding = False
    # grid_fit: smaller grids for small documents, the same relations on both backends
    fit_torch = Runtime.load(checkpoint, backend="torch", grid_fit=8)
    fit_ort = Runtime.load(out, backend="onnxruntime", threads=1, grid_fit=8)
    assert fit_ort.config.grid_fit == 8 and ort_rt.config.grid_fit == 0
    assert [fit_ort.config.grid_for(d.num_entities) for d in docs[:6]] == [8] * 5 + [56]  # docs[5] has 50 entities
    a_all = list(fit_torch.predict(docs, batch_size=4))
    b_all = list(fit_ort.predict(docs, batch_size=4))
    for a, b in zip(a_all, b_all):
        assert a.ok and b.ok and a.title == b.title
        assert {(x.head, x.tail, x.label) for x in a.relations} == {(x.head, x.tail, x.label) for x in b.relations}
    assert sum(len(p.relations) for p in a_all) > 0


def test_workers_give_the_same_predictions_in_input_order(checkpoint, docs):
    """workers=2: batches run two at a time across chunks; the output is the one of workers=1, in input
    order, bad documents included, and stopping early leaves no batch running."""
    good = as_dict(docs[0])
    items = [as_dict(d) for d in docs[:7]] + [dict(good, vertexSet=[]), BadInput("x:9", "not valid JSON")] + [as_dict(d) for d in docs[7:]]
    one = Runtime.load(checkpoint, backend="torch", threads=1, chunk_batches=1)
    two = Runtime.load(checkpoint, backend="torch", threads=1, chunk_batches=1, workers=2)
    assert two.workers == 2
    a, b = list(one.predict(items, batch_size=2)), list(two.predict(items, batch_size=2))
    assert [p.index for p in b] == list(range(len(items))) and [p.ok for p in b] == [p.ok for p in a]
    assert [p.error for p in b] == [p.error for p in a] and not b[7].ok and b[8].error == "x:9: not valid JSON"
    assert [[(x.head, x.tail, x.label, round(x.score, 4)) for x in p.relations] for p in b] == \
           [[(x.head, x.tail, x.label, round(x.score, 4)) for x in p.relations] for p in a]
    stream = two.predict(items, batch_size=2)
    assert next(stream).index == 0
    stream.close()  # cancels the queued batches instead of running them
    with pytest.raises(ValueError, match="workers"):
        Runtime(one.backend, workers=0)
