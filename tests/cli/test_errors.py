"""Every command, driven through the ordinary mistakes a user makes: each ends in one `error:` line that
names the path or option (exit 2 for usage and input errors), never a traceback; and the happy paths
around them (slices, Ctrl-C then --resume, unknown entity types, an export given to docunet-eval)."""
from __future__ import annotations

import builtins
import json
import random

import pytest
from click.testing import CliRunner

from docunet.checkpoint import save_checkpoint
from docunet.cli.bench import main as bench_main
from docunet.cli.evaluate import main as eval_main
from docunet.cli.export import main as export_main
from docunet.cli.run import main as run_main
from docunet.cli.train import main as train_main
from docunet.runtime import Runtime
from tests.conftest import as_dict, synthetic_document, tiny_model, to_docred

COMMANDS = {"run": run_main, "eval": eval_main, "export": export_main, "train": train_main, "bench": bench_main}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("cli")
    model, _ = tiny_model(tokenizer, seed=2, top_k=2)
    ckpt = save_checkpoint(model, tokenizer, root / "ckpt")
    rng = random.Random(11)
    docs = [synthetic_document(rng, f"d{i}", n_filler=rng.choice([0, 3]), n_pairs=rng.choice([2, 3])) for i in range(9)]
    data = root / "docs.jsonl"
    data.write_text("".join(json.dumps(to_docred(d)) + "\n" for d in docs))
    (root / "empty.jsonl").write_text("")
    (root / "not_a_model").mkdir()
    (root / "not_a_model" / "notes.txt").write_text("hello")
    return {"root": root, "ckpt": ckpt, "data": data, "docs": docs}


def invoke(command: str, args: list[str], **kwargs):
    res = CliRunner().invoke(COMMANDS[command], [str(a) for a in args], **kwargs)
    assert "Traceback" not in res.output, res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def first_error(res) -> str:
    return next(line for line in res.output.splitlines() if line.startswith("error:"))


@pytest.fixture(scope="module")
def export_dir(setup):
    pytest.importorskip("onnxruntime")
    from docunet.export import ExportOptions, export_checkpoint

    return export_checkpoint(setup["ckpt"], setup["root"] / "export", ExportOptions(threads=1)).directory


CASES = [
    # (command, args (R = root, C = checkpoint, D = data), exit code, words in the first error line)
    ("run", ["R/nofile.jsonl", "--model", "C"], 2, ["nofile.jsonl", "no such file"]),
    ("run", ["R", "--model", "C"], 2, ["is a folder", "pass --text"]),
    ("run", ["R/empty.jsonl", "--model", "C"], 2, ["empty.jsonl", "is empty"]),
    ("run", ["D", "--model", "C", "--out", "R/no/such/dir/out.jsonl"], 2, ["--out", "no such directory"]),
    ("run", ["D", "--model", "C", "--out", "D"], 2, ["--out", "exists", "--overwrite"]),
    ("run", ["D", "--model", "C", "--out", "R"], 2, ["--out", "is a directory"]),
    ("run", ["D", "--model", "C", "--device", "cuda"], 2, ["--device", "no CUDA device"]),
    ("run", ["D", "--model", "C", "--device", "tpu"], 2, ["--device", "not a device"]),
    ("run", ["D", "--model", "C", "--top-k", "-3"], 2, ["--top-k", "-3"]),
    ("run", ["D", "--model", "C", "--batch-size", "0"], 2, ["--batch-size"]),
    ("run", ["D", "--model", "R/not_a_model"], 2, ["--model", "not a docunet model directory"]),
    ("run", ["D", "--model", "D"], 2, ["--model", "is a file"]),
    ("run", ["D", "--model", "C", "--resume"], 2, ["--resume needs --out"]),
    ("eval", ["--model", "C", "--data", "R/nofile.json"], 2, ["--data", "no such file"]),
    ("eval", ["--model", "R/not_a_model", "--data", "D"], 2, ["--model", "not a docunet model directory"]),
    ("eval", ["--model", "C", "--data", "D", "--top-k", "-3"], 2, ["--top-k"]),
    ("eval", ["--predictions", "D"], 2, ["--predictions needs --gold"]),
    ("eval", ["--model", "C"], 2, ["--model", "--data"]),
    ("eval", ["--model", "C", "--data", "D", "--write-predictions", "D"], 2, ["--write-predictions", "exists"]),
    ("export", ["--checkpoint", "R/not_a_model", "--out", "R/x"], 2, ["--checkpoint", "not a docunet model directory"]),
    ("export", ["--checkpoint", "C", "--out", "R/x", "--eval-data", "R/nofile.json"], 2, ["--eval-data", "no such file"]),
    ("export", ["--checkpoint", "C", "--out", "R/x", "--opset", "5"], 2, ["--opset"]),
    ("export", ["--checkpoint", "C", "--out", "R/x", "--batch-size", "0"], 2, ["--batch-size"]),
    ("train", ["--train", "R/nofile.json", "--dev", "D", "--encoder", "x", "--out", "R/t"], 2, ["--train", "no such file"]),
    ("train", ["--train", "D", "--dev", "D", "--encoder", "x", "--out", "R/t", "--epochs", "0"], 2, ["--epochs"]),
    ("train", ["--train", "D", "--dev", "D", "--encoder", "x", "--out", "R/t", "--lr-encoder", "-1"], 2, ["--lr-encoder"]),
    ("train", ["--train", "D", "--dev", "D", "--encoder", "R/not_a_model", "--out", "R/t"], 2, ["--encoder", "cannot load"]),
    ("train", ["--train", "D", "--dev", "D", "--encoder", "x", "--out", "C"], 2, ["--out", "already holds a training run"]),
    ("train", ["--train", "D", "--dev", "D", "--encoder", "x", "--out", "D"], 2, ["--out", "is a file"]),
    ("bench", ["--model", "C"], 2, ["--docs"]),
    ("bench", ["--model", "C", "--docs", "D", "--backends", "torch-turbo"], 2, ["--backends", "torch-turbo"]),
    ("bench", ["--model", "C", "--docs", "D", "--backends", "onnxruntime@R/not_a_model"], 2, ["--backends", "not a docunet-export"]),
    ("bench", ["--model", "C", "--docs", "D", "--batch-sizes", "8,0"], 2, ["--batch-sizes"]),
    ("bench", ["--model", "R/nofile", "--docs", "D"], 2, ["--model", "no such directory"]),
    ("bench", ["--model", "C", "--docs", "D", "--soak", "5"], 2, ["--soak-backend"]),
]


@pytest.mark.parametrize("command, args, code, words", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_mistakes_end_in_one_error_line(setup, command, args, code, words):
    subst = {"R": setup["root"], "C": setup["ckpt"], "D": setup["data"]}
    argv = [str(subst[a[0]]) + a[1:] if a[:1] in subst and (len(a) == 1 or a[1] == "/") else a for a in args]
    res = invoke(command, argv)
    assert res.exit_code == code, res.output
    line = first_error(res)
    assert all(w in line for w in words), line
    assert res.output.splitlines()[0] == line  # the first thing said is the error, before any model is loaded


def test_an_unreadable_input_is_named(setup, monkeypatch):
    """A file without read permission (simulated: root reads every file)."""
    real_open = builtins.open

    def guarded(path, *args, **kwargs):
        if str(path) == str(setup["data"]):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    res = invoke("run", [setup["data"], "--model", setup["ckpt"]])
    assert res.exit_code == 2 and "cannot be read (Permission denied)" in first_error(res)


def test_slices_work_in_run_as_in_train_and_eval(setup, tmp_path):
    out = tmp_path / "out.jsonl"
    res = invoke("run", [f"{setup['data']}[2:5]", "--model", setup["ckpt"], "--out", out, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["title"] for x in out.read_text().splitlines()] == ["d2", "d3", "d4"]
    assert "3 documents" in res.output


def test_ctrl_c_then_resume_gives_the_full_output(setup, tmp_path, monkeypatch):
    args = [setup["data"], "--model", setup["ckpt"], "--backend", "torch", "--no-progress", "--batch-size", "2"]
    full = tmp_path / "full.jsonl"
    assert invoke("run", [*args, "--out", full]).exit_code == 0
    real = Runtime.predict

    def interrupted(self, *a, **kw):
        for i, p in enumerate(real(self, *a, **kw)):
            if i == 4:
                raise KeyboardInterrupt
            yield p

    part = tmp_path / "part.jsonl"
    monkeypatch.setattr(Runtime, "predict", interrupted)
    res = invoke("run", [*args, "--out", part])
    assert res.exit_code == 130 and "interrupted after 4 documents; continue with the same command and --resume" in res.output
    monkeypatch.setattr(Runtime, "predict", real)
    res = invoke("run", [*args, "--out", part, "--resume"])
    assert res.exit_code == 0 and "resumed after 4 lines" in res.output
    assert part.read_text() == full.read_text()


def test_unknown_entity_types_are_said_once_and_summarised(setup, tmp_path):
    docs = [as_dict(d) for d in setup["docs"][:3]]
    for d in docs:
        d["vertexSet"][0][0]["type"] = "PERSON"
    docs[1]["vertexSet"][1][0]["type"] = "banana"
    inp = tmp_path / "odd.jsonl"
    inp.write_text("".join(json.dumps(d) + "\n" for d in docs))
    res = invoke("run", [inp, "--model", setup["ckpt"], "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 0, res.output
    warnings = [x for x in res.output.splitlines() if x.startswith("warning: entity type")]
    assert len(warnings) == 2 and "'PERSON'" in warnings[0] and "PER, ORG, LOC" in warnings[0]
    assert "note: entity type 'PERSON'" in res.output and "(3 mentions)" in res.output and "(1 mention)" in res.output


def test_eval_accepts_an_export_and_scores_like_the_checkpoint(setup, export_dir):
    a = invoke("eval", ["--model", setup["ckpt"], "--data", setup["data"]])
    b = invoke("eval", ["--checkpoint", export_dir, "--data", setup["data"]])
    assert a.exit_code == b.exit_code == 0, a.output + b.output
    assert json.loads(a.output[a.output.index("{"):])["f1"] == json.loads(b.output[b.output.index("{"):])["f1"]


def test_export_refuses_an_export_as_its_checkpoint(setup, export_dir, tmp_path):
    res = invoke("export", ["--checkpoint", export_dir, "--out", tmp_path / "x"])
    assert res.exit_code == 2 and "is a docunet-export directory" in first_error(res) and str(setup["ckpt"]) in first_error(res)


def test_python_api_names_relations_and_validates(setup):
    rt = Runtime.load(setup["ckpt"], backend="torch")
    got = [p for p in rt.predict([as_dict(d) for d in setup["docs"]]) if p.relations]
    r = got[0].relations[0]
    doc = got[0].document
    assert r.head_name == doc.entities[r.head][0].name and r.tail_name == doc.entities[r.tail][0].name and r.relation
    with pytest.raises(ValueError, match="top_k"):
        next(rt.predict([as_dict(setup["docs"][0])], top_k=-3))
    with pytest.raises(ValueError, match="batch_size"):
        next(rt.predict([as_dict(setup["docs"][0])], batch_size=0))
    bad = rt.predict_batch([[1, 2], "text"])
    assert bad[0].error == "item 1: expected text, a Document or a DocRED-style dict, got a list"
    assert bad[1].error.startswith("item 2: this model needs 2 entities per document")  # text needs an entity model
    import docunet

    assert "Runtime" in dir(docunet)


def test_a_json_list_line_is_a_record_error_with_its_line(setup, tmp_path):
    inp = tmp_path / "mixed.jsonl"
    inp.write_text(json.dumps(as_dict(setup["docs"][0])) + "\n" + json.dumps([1, 2]) + "\n")
    out = tmp_path / "o.jsonl"
    res = invoke("run", [inp, "--model", setup["ckpt"], "--out", out, "--no-progress"])
    assert res.exit_code == 1
    rec = json.loads(out.read_text().splitlines()[1])
    assert rec == {"line": 2, "error": f"{inp}:2: expected a JSON object (a document), got a list"}
    assert "1 document" in res.output or "2 documents" in res.output
