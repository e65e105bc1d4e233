"""How well `score` reads as a probability: Platt scaling fitted on one labelled slice, measured on another.

    python benchmarks/score_calibration.py CHECKPOINT --fit 'DEV[0:50]' --test 'DEV[50:100]' [--write]

For every predicted relation of the test documents (what docunet-run outputs) it compares the score
with the truth: expected calibration error (ECE, 10 equal-width bins), Brier score, and a reliability
table, for sigmoid(margin) (the transform of uncalibrated checkpoints) and for the Platt scaling fitted
on the --fit documents (what docunet-train stores in config.json). `--write` stores that calibration in
the checkpoint's config.json (for checkpoints trained before calibration existed; the checkpoint's hash
changes, so export it again afterwards).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from docunet.artifacts import CONFIG_FILE
from docunet.checkpoint import load_checkpoint
from docunet.inference import predict_documents
from docunet.models import family_of
from docunet.readers import load_documents


def reliability(scores: list[float], correct: list[bool], bins: int = 10) -> tuple[float, float, list[tuple]]:
    """(ECE, Brier score, [(bin, count, mean score, accuracy)])."""
    n = len(scores)
    table, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, s in enumerate(scores) if lo <= s < hi or (b == bins - 1 and s == 1.0)]
        if not idx:
            continue
        conf = sum(scores[i] for i in idx) / len(idx)
        acc = sum(correct[i] for i in idx) / len(idx)
        ece += len(idx) / n * abs(conf - acc)
        table.append((f"{lo:.1f}-{hi:.1f}", len(idx), conf, acc))
    brier = sum((s - c) ** 2 for s, c in zip(scores, correct)) / max(1, n)
    return ece, brier, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--fit", required=True, help="Labelled documents to fit the calibration on (the dev split).")
    p.add_argument("--test", required=True, help="Held-out labelled documents to measure it on.")
    p.add_argument("--write", action="store_true", help="Store the fitted calibration in the checkpoint's config.json.")
    a = p.parse_args()
    model, featurizer = load_checkpoint(a.checkpoint)
    family = family_of(model.config)
    fit_docs = load_documents(a.fit, model.config.relations)
    test_docs = load_documents(a.test, model.config.relations)
    updates = family.calibrate(model, featurizer, fit_docs)
    print(f"checkpoint {a.checkpoint}; fitted on {a.fit} ({len(fit_docs)} docs): {updates}")
    rows = []
    for name, cal in (("sigmoid(margin)", None), ("Platt scaling (fit split)", updates.get("score_calibration"))):
        model.config = dataclasses.replace(model.config, score_calibration=cal)
        preds = predict_documents(model, featurizer, test_docs)
        scores, correct = [], []
        for doc, rels in zip(test_docs, preds):
            gold = {(r.head, r.tail, r.label) for r in doc.relations or []}
            for r in rels:
                scores.append(r.score)
                correct.append((r.head, r.tail, r.label) in gold)
        ece, brier, table = reliability(scores, correct)
        rows.append((name, len(scores), sum(correct) / max(1, len(scores)), ece, brier, table))
    print(f"\nmeasured on {a.test} ({len(test_docs)} docs), every predicted relation:\n")
    print("| score | relations | precision | ECE | Brier |\n|---|---|---|---|---|")
    for name, n, prec, ece, brier, _ in rows:
        print(f"| {name} | {n} | {prec:.3f} | {ece:.3f} | {brier:.3f} |")
    for name, *_, table in rows:
        print(f"\nreliability, {name}: " + "; ".join(f"{b}: {c} rel, mean score {m:.2f}, correct {acc:.2f}" for b, c, m, acc in table))
    if a.write and updates:
        cfg_path = a.checkpoint / CONFIG_FILE
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg.update(updates)
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {updates} to {cfg_path}")
    assert all(math.isfinite(r[3]) for r in rows)


if __name__ == "__main__":
    main()
