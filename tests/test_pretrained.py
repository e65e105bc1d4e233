"""Shipped models by name (docunet.pretrained) and a smoke test of the default model when it is installed
(every other test builds its own tiny models)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from docunet import pretrained
from docunet.pipeline.bundle import PIPELINE_FILE
from docunet.pretrained import DEFAULT_MODEL, ModelNotFound, available, resolve_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "texts"


def test_names_directories_and_the_default_resolve(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    assert available() == {}
    with pytest.raises(ModelNotFound, match=f"default model '{DEFAULT_MODEL}' is not in this installation"):
        resolve_model()
    with pytest.raises(ModelNotFound, match="no-such-model: no such model directory, and not a shipped model"):
        resolve_model("no-such-model")
    (tmp_path / DEFAULT_MODEL).mkdir()
    (tmp_path / DEFAULT_MODEL / PIPELINE_FILE).write_text("{}")
    (tmp_path / "notes").mkdir()  # a folder that holds no model is not offered
    assert list(available()) == [DEFAULT_MODEL]
    assert resolve_model() == tmp_path / DEFAULT_MODEL == resolve_model(DEFAULT_MODEL)
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert resolve_model(other) == other  # a directory is taken as it is


@pytest.mark.skipif(DEFAULT_MODEL not in available(), reason="the default model is not in this installation")
def test_default_model_finds_entities_and_relations_in_the_example_texts():
    pytest.importorskip("onnxruntime")
    from docunet.runtime import Runtime

    texts = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.txt"))]
    rt = Runtime.load(threads=1)
    preds = list(rt.predict(texts))
    assert len(preds) == len(texts) >= 3
    for text, p in zip(texts, preds):
        assert p.error is None and p.entities
        assert all(text[m.start_char:m.end_char] == m.text for e in p.entities for m in e.mentions)
    names = {(e.name, e.type) for p in preds for e in p.entities}
    assert ("London", "LOC") in names and ("Nokia", "ORG") in names
    assert sum(len(p.relations) for p in preds) > 0
    card = json.loads((available()[DEFAULT_MODEL] / PIPELINE_FILE).read_text())
    assert card  # the bundle's manifest is readable


@pytest.mark.skipif(DEFAULT_MODEL not in available(), reason="the default model is not in this installation")
def test_docunet_run_without_model_uses_the_default():
    from docunet.cli.run import main as run_main

    res = CliRunner().invoke(run_main, [str(EXAMPLES), "--text", "--format", "text", "--no-progress", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("== line ") == len(list(EXAMPLES.glob("*.txt"))) and "-->" in res.stdout
