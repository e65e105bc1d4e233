"""A second model family plugs in through the registry alone: checkpoint, export (other graph names,
explicit position_ids, a [B, T, T] mask), validation, manifest, ONNX Runtime engines and the runtime
all work for it with no change outside its own package (tests/models/toy_family.py)."""
from __future__ import annotations

import json
import random

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import docunet.models as registry  # noqa: E402
from docunet.artifacts import verify_manifest  # noqa: E402
from docunet.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from docunet.export import ExportOptions, export_checkpoint  # noqa: E402
from docunet.inference import predict_documents  # noqa: E402
from docunet.runtime import Runtime  # noqa: E402
from tests.conftest import RELATIONS, as_dict, synthetic_document, tiny_transformer, to_docred  # noqa: E402
from tests.models import toy_family  # noqa: E402


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry.FAMILY_MODULES, toy_family.MODEL_TYPE, "tests.models.toy_family")
    yield
    registry._loaded.pop(toy_family.MODEL_TYPE, None)


def relations_of(predictions):
    return [sorted((r.head, r.tail, r.label, round(r.score, 4)) for r in p) for p in predictions]


def test_a_second_family_trains_exports_validates_and_serves(toy_registered, tokenizer, tmp_path):
    transformer = tiny_transformer(tokenizer, seed=4)
    config = toy_family.ToyConfig(relations=list(RELATIONS), encoder_config=transformer.config.to_dict(), threshold=-0.05)
    torch.manual_seed(4)
    model = toy_family.FAMILY.build_model(config, transformer).eval()
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    assert json.loads((ckpt / "config.json").read_text())["model_type"] == toy_family.MODEL_TYPE

    reloaded, featurizer = load_checkpoint(ckpt)  # dispatched on model_type
    assert isinstance(reloaded, toy_family.ToyModel)
    rng = random.Random(3)
    docs = [synthetic_document(rng, f"d{i}", n_filler=rng.choice([0, 4]), n_pairs=rng.choice([2, 3])) for i in range(6)]
    reference = predict_documents(reloaded, featurizer, docs, batch_size=4)
    assert sum(map(len, reference)) > 0  # the threshold lets some pairs through: a real comparison

    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([to_docred(d) for d in docs]))
    result = export_checkpoint(ckpt, tmp_path / "export", ExportOptions(sample_data=str(samples), threads=1, batch_size=3))
    manifest = verify_manifest(result.directory)
    assert set(manifest["graphs"]) == {"text_encoder", "classifier"}
    assert manifest["graphs"]["text_encoder"]["dynamic_axes"]["attention_mask"] == {"0": "batch", "1": "seq", "2": "seq"}
    assert manifest["validation"]["passed"] and manifest["validation"]["samples"]["documents"] == len(docs)
    assert manifest["validation"]["samples"]["max_abs_logit_diff"] < 1e-4

    ort = Runtime.load(result.directory, backend="onnxruntime", threads=1)
    assert ort.name == "onnxruntime-fp32" and ort.family is toy_family.FAMILY
    served = ort.predict([as_dict(d) for d in docs], batch_size=4)
    assert relations_of(p.relations for p in served) == relations_of(reference)
    one = ort.predict_batch([as_dict(docs[0]), {"title": "broken"}])
    assert one[0].ok and relations_of([one[0].relations]) == relations_of(reference[:1]) and "sents" in one[1].error
