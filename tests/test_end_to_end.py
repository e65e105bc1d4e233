"""Train a tiny random model on synthetic documents until it fits them, then reload it."""
import json
import random

import torch
from click.testing import CliRunner

from docunet.checkpoint import load_checkpoint
from docunet.cli.evaluate import main as eval_main
from docunet.cli.train import main as train_main
from docunet.inference import predict_documents
from docunet.metrics import to_docred_submission
from docunet.training import TrainArgs, evaluate_docs, train

from tests.conftest import synthetic_document, tiny_model, tiny_transformer


def synthetic_docs(n, seed):
    rng = random.Random(seed)
    return [synthetic_document(rng, f"doc{seed}-{i}", n_filler=rng.choice([0, 3]), n_pairs=rng.choice([2, 3])) for i in range(n)]


def test_tiny_model_fits_and_reloads_identically(tokenizer, tmp_path):
    docs = synthetic_docs(24, 1)
    model, feat = tiny_model(tokenizer, seed=3)
    args = TrainArgs(epochs=14, batch_size=4, lr_encoder=2e-3, lr_classifier=2e-3, lr_unet=2e-3, warmup_ratio=0.05, seed=3)
    summary = train(model, feat, docs, docs, args, tmp_path / "ckpt", progress=False)
    assert summary["best_dev_f1"] >= 0.95, summary["epochs"][-1]
    lines = (tmp_path / "ckpt" / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == 14 and {"loss", "dev_f1", "dev_ign_f1", "train_seconds", "peak_memory_gb"} <= set(json.loads(lines[0]))
    reloaded, rfeat = load_checkpoint(tmp_path / "ckpt")
    best, _ = evaluate_docs(reloaded, rfeat, docs, None)
    assert abs(best.f1 - summary["best_dev_f1"]) < 1e-12
    # identical logits from the in-memory best and the reloaded checkpoint
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["relations"] == ["Na", "employer", "birthplace", "headquarters"] and cfg["grid_size"] == 42
    # probability-like scores: Platt scaling fitted on dev at the end of training, a > 0 (a larger margin is surer)
    a, b = cfg["score_calibration"]
    assert a > 0 and summary["calibration"]["score_calibration"] == [a, b]
    rels = [r for p in predict_documents(reloaded, rfeat, docs) for r in p]
    assert rels and all(0 < r.score <= 1 for r in rels) and all(r.relation == r.label for r in rels)
    again, _ = load_checkpoint(tmp_path / "ckpt")
    from docunet.models.docunet.batching import collate_features
    batch = collate_features(rfeat, rfeat(docs[:5]))
    with torch.no_grad():
        (d1, l1), = reloaded(batch)
        (d2, l2), = again(batch)
    assert torch.equal(l1, l2)
    preds = predict_documents(reloaded, rfeat, docs[:3])
    sub = to_docred_submission(docs[:3], preds)
    assert sub and all(set(x) == {"title", "h_idx", "t_idx", "r"} for x in sub)


def test_cli_train_and_eval(tokenizer, tmp_path):
    enc_dir = tmp_path / "encoder"
    tiny_transformer(tokenizer).save_pretrained(enc_dir)
    tokenizer.save_pretrained(enc_dir)
    docs = synthetic_docs(8, 2)
    data = tmp_path / "train.jsonl"
    with open(data, "w") as fh:
        for d in docs:
            fh.write(json.dumps({"title": d.title, "sents": d.sents,
                                 "vertexSet": [[{"name": m.name, "sent_id": m.sent_id, "pos": [m.start, m.end], "type": m.type} for m in e] for e in d.entities],
                                 "labels": [{"h": r.head, "t": r.tail, "r": r.label, "evidence": []} for r in d.relations]}) + "\n")
    out = tmp_path / "run"
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "labels"}) + "\n"
                                  for line in data.read_text().splitlines()[:2]))
    res = CliRunner().invoke(train_main, ["--train", str(data), "--train", str(unlabelled), "--dev", str(data), "--encoder", str(enc_dir),
                                          "--out", str(tmp_path / "refused")])
    assert res.exit_code == 2 and "unlabelled.jsonl:1" in res.output and "no relation labels" in res.output, res.output
    # two --train slices: the documents of both, in order
    res = CliRunner().invoke(train_main, ["--train", f"{data}[0:4]", "--train", f"{data}[4:6]", "--dev", f"{data}[6:8]", "--encoder", str(enc_dir),
                                          "--out", str(out), "--epochs", "1", "--unet-channels", "8", "--emb-size", "32", "--block-size", "8",
                                          "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert f"train 6 docs ({data}[0:4] + {data}[4:6])" in res.output
    assert (out / "model.safetensors").exists() and (out / "config.json").exists() and (out / "tokenizer_config.json").exists()
    pred_file = tmp_path / "pred.json"
    res = CliRunner().invoke(eval_main, ["--checkpoint", str(out), "--data", f"{data}[6:8]", "--train-facts", f"{data}[0:6]",
                                         "--write-predictions", str(pred_file)])
    assert res.exit_code == 0, res.output
    scores = json.loads(res.output)
    res2 = CliRunner().invoke(eval_main, ["--predictions", str(pred_file), "--gold", f"{data}[6:8]", "--train-facts", f"{data}[0:6]"])
    assert res2.exit_code == 0 and json.loads(res2.output) == scores  # the same scorer either way
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.read_text().splitlines()[0] + "\n" + '{"title": "x", "sents": [["a"]], "vertexSet": [[{"sent_id": 0, "pos": [0, 3]}]]}\n')
    res = CliRunner().invoke(eval_main, ["--checkpoint", str(out), "--data", str(bad)])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output and "vertexSet[0][0].pos" in res.output
