"""docunet-run --engine ray: byte-identical to the local engine (good and bad lines, big and long documents,
both formats), --resume, and an actor killed mid-run. One local Ray for the whole module (2 CPUs, small
object store, no dashboard); skipped where the [ray] extra is not installed."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from docunet.checkpoint import save_checkpoint  # noqa: E402
from docunet.cli.run import main as run_main  # noqa: E402
from docunet.readers import iter_records  # noqa: E402
from docunet.scale.ray_engine import RayOptions, predict_on_ray  # noqa: E402
from tests.conftest import as_dict, many_entities_document, synthetic_document, tiny_model  # noqa: E402

import random  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("ray")
    model, _ = tiny_model(tokenizer, seed=9, top_k=2)
    ckpt = save_checkpoint(model, tokenizer, root / "ckpt")
    rng = random.Random(4)
    docs = [as_dict(synthetic_document(rng, f"d{i}", n_filler=rng.choice([0, 3, 9]), n_pairs=rng.choice([2, 3]))) for i in range(40)]
    docs[7] = as_dict(many_entities_document(60, "crowd"))
    docs[12] = as_dict(synthetic_document(rng, "long", n_filler=80, n_pairs=6))  # several encoder windows
    lines = [json.dumps(d).encode() for d in docs]
    lines[3] = b'{"title": "cut", "sents": [["a"]'  # bad JSON
    lines[20] = b"\xff\xfe not utf-8"
    lines[25] = json.dumps([1, 2]).encode()
    lines[30] = b""
    data = root / "mixed.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    return {"root": root, "ckpt": ckpt, "data": data}


def run(args, ok=(0, 1)):
    res = CliRunner().invoke(run_main, [str(a) for a in args])
    assert res.exit_code in ok and "Traceback" not in res.output, res.output
    return res


def test_ray_output_is_byte_identical_to_the_local_engine(setup, tmp_path):
    common = [setup["data"], "--model", setup["ckpt"], "--backend", "torch", "--no-progress", "--batch-size", "4", "--threads", "1"]
    for fmt in ("jsonl", "docred"):
        local, remote = tmp_path / f"local.{fmt}", tmp_path / f"ray.{fmt}"
        a = run([*common, "--format", fmt, "--out", local])
        b = run([*common, "--format", fmt, "--out", remote, "--engine", "ray", "--workers", "2"])
        assert local.read_bytes() == remote.read_bytes()
        assert a.exit_code == b.exit_code == 1  # bad lines: the same exit status
        assert a.output.strip().splitlines()[-1] == b.output.strip().splitlines()[-1]  # and the same summary
    records = [json.loads(x) for x in (tmp_path / "local.jsonl").read_text().splitlines()]
    assert len(records) == 40 and [r.get("line") for r in records if "error" in r] == [4, 21, 26, 31]


def test_ray_resume_continues_like_the_local_engine(setup, tmp_path):
    """Resumed runs batch the remaining lines together (from the first missing one), on either engine, so a
    resumed Ray run is byte-identical to a resumed local run; neither duplicates nor loses a line."""
    common = [setup["data"], "--model", setup["ckpt"], "--backend", "torch", "--no-progress", "--batch-size", "4", "--skip-errors",
              "--threads", "1"]
    full = tmp_path / "full.jsonl"
    run([*common, "--out", full], ok=(0,))
    lines = full.read_text().splitlines(keepends=True)
    resumed = {}
    for engine in ("local", "ray"):
        part = tmp_path / f"part-{engine}.jsonl"
        part.write_text("".join(lines[:17]) + lines[17][:9])  # interrupted mid-line
        res = run([*common, "--out", part, "--resume", "--engine", engine], ok=(0,))
        assert "resumed after 17 lines" in res.output
        resumed[engine] = part.read_bytes()
    assert resumed["ray"] == resumed["local"]
    got = [json.loads(x) for x in resumed["ray"].decode().splitlines()]
    want = [json.loads(x) for x in lines]
    assert [(r.get("title"), r.get("line")) for r in got] == [(r.get("title"), r.get("line")) for r in want]


def test_a_killed_actor_is_restarted_and_the_output_is_complete(setup, tmp_path):
    flag = tmp_path / "killed"
    records = list(iter_records(setup["data"]))
    options = RayOptions(workers=1, batch_size=2, backend="torch", threads=1, die_once=str(flag))
    got = list(predict_on_ray(str(setup["ckpt"]), iter(records), options))
    assert flag.exists()  # the actor's process did die mid-run
    assert [p.index for p in got] == list(range(len(records)))
    clean = list(predict_on_ray(str(setup["ckpt"]), iter(records), RayOptions(workers=1, batch_size=2, backend="torch", threads=1)))
    assert [(p.error, [(r.head, r.tail, r.label, r.score) for r in p.relations]) for p in got] == \
           [(p.error, [(r.head, r.tail, r.label, r.score) for r in p.relations]) for p in clean]


def test_a_chunk_that_raises_becomes_error_records(setup):
    """Inside an actor: a failing prediction call turns into one error record per line of its chunk."""
    import pickle

    from docunet.scale.ray_engine import _Predictor

    records = list(iter_records(setup["data"]))[:5]
    actor = _Predictor(str(setup["ckpt"]), RayOptions(backend="torch", threads=1), 1, None, None)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    actor.rt.predict = broken
    out = pickle.loads(actor({"chunk": [pickle.dumps(list(enumerate(records, 10)))]})["chunk"][0])
    assert [p.index for p in out] == [10, 11, 12, 13, 14]
    assert all(p.error == f"{r.source}: batch failed: out of memory" for p, r in zip(out, records))


def test_serving_settings_reach_the_ray_actors(tmp_path, tokenizer):
    """--setting (here an entity model's prune ratio) is applied inside every actor: the same lines as the local
    engine with the same setting, and a setting the model does not have is the same clear error."""
    from tests.models.plmarker.test_plmarker import make as make_ner

    model, _ = make_ner(tokenizer, seed=6)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ner")
    texts = ["Alice works for Acme in Paris.", "Bob works for Initech in Oslo. Carol works for Globex.", "Dave ."] * 3
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    common = [data, "--model", ckpt, "--backend", "torch", "--no-progress", "--threads", "1"]
    outs = {}
    for ratio in ("0", "0.2"):
        for engine in ("local", "ray"):
            out = tmp_path / f"{engine}-{ratio}.jsonl"
            run([*common, "--setting", f"prune_ratio={ratio}", "--setting", "prune_min_spans=0", "--engine", engine,
                 "--workers", "2" if engine == "ray" else "1",
                 "--out", out], ok=(0,))
            outs[engine, ratio] = out.read_bytes()
    assert outs["local", "0"] == outs["ray", "0"] and outs["local", "0.2"] == outs["ray", "0.2"]
    assert outs["ray", "0"] != outs["ray", "0.2"]  # the setting did reach the model: fewer candidate spans scored
    res = CliRunner().invoke(run_main, [str(a) for a in [*common, "--setting", "top_k=3", "--engine", "ray", "--out", tmp_path / "x"]])
    assert res.exit_code != 0 and "top_k" in res.output and "Traceback" not in res.output


def test_a_sentence_relation_bundle_runs_on_ray_like_locally(tmp_path, tokenizer):
    """PL-Marker's NER + relation bundle (no coreference) on text lines and a SciERC line: Ray's output is the local
    engine's, byte for byte."""
    from docunet.pipeline.bundle import write_bundle
    from tests.models.plmarker.test_plmarker import make as make_ner
    from tests.models.plmarker.test_relations import make as make_re
    from tests.models.plmarker.test_relations import re_doc, to_dygie

    bundle = tmp_path / "bundle"
    ner, _ = make_ner(tokenizer, seed=3, max_pair_length=16, max_seq_length=64)
    rel, _ = make_re(tokenizer, seed=2)
    save_checkpoint(ner, tokenizer, bundle / "ner")
    save_checkpoint(rel, tokenizer, bundle / "relations")
    write_bundle(bundle, coref=None)
    lines = [{"text": "Alice and Bob works for Acme. Carol was born in Paris."}, {"text": "the company globex is in oslo ."},
             to_dygie(re_doc(random.Random(5), "sci")), {"text": ""}] * 2
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    common = [data, "--model", bundle, "--backend", "torch", "--no-progress", "--threads", "1", "--batch-size", "2"]
    run([*common, "--out", tmp_path / "local.jsonl"])
    run([*common, "--out", tmp_path / "ray.jsonl", "--engine", "ray", "--workers", "2"])
    local = (tmp_path / "local.jsonl").read_bytes()
    assert local == (tmp_path / "ray.jsonl").read_bytes()
    recs = [json.loads(x) for x in local.decode().splitlines()]
    assert len(recs) == len(lines) and sum(len(r.get("relations", [])) for r in recs) > 0
