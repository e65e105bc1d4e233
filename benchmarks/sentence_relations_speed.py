"""Sentence-level relation extraction speed on CPU (issue 15): PL-Marker NER + PL-Marker relations, side by side for
PyTorch and the ONNX Runtime exports, in one process on one machine.

    python benchmarks/sentence_relations_speed.py --ner NER_CKPT --relations RE_CKPT \
        --docs ../shared/data/scierc/test.json [--exports runs/plmarker-re-exports] [--out DIR]

The documents' words are given (their entity and relation annotations are dropped): the entity model finds the
mentions, the relation model relates the mentions of each sentence (every mention an entity of its own, as the seed's
--use_ner_results). Variants: both checkpoints in torch (fp32), both models exported fp32 and int8 (made under
--exports by docunet-export when missing) in ONNX Runtime. Each variant is warmed up on one batch, then measured
--rounds times round-robin (the median round is reported: shared machines are noisy). Prints a markdown table with
sentences/s per stage and end to end, with the CPU; --out writes it and the JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch

from docunet.engines.cpu import cpu_info
from docunet.pipeline.sentence_relations import predicted_entity_documents, predict_relations
from docunet.readers import load_documents
from docunet.runtime import Runtime


def export(checkpoint: str, out: Path, *extra: str) -> Path:
    if not (out / "manifest.json").is_file():
        subprocess.run(["docunet-export", "--checkpoint", checkpoint, "--out", str(out), "--quiet", *extra], check=True)
    return out


def one_round(ner, rel, docs, bs: int) -> tuple[float, float, int, int]:
    """Seconds for the entity step and the relation step over all documents, mentions and relations found."""
    t0 = time.perf_counter()
    entity_docs, _ = predicted_entity_documents(ner, docs, batch_size=bs)
    t1 = time.perf_counter()
    preds, _ = predict_relations(rel, entity_docs, batch_size=bs)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, sum(len(d.entities) for d in entity_docs), sum(map(len, preds))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ner", required=True, help="plmarker-ner checkpoint")
    p.add_argument("--relations", required=True, help="plmarker-re checkpoint")
    p.add_argument("--docs", required=True, help="SciERC (DyGIE) or DocRED documents; their words are used")
    p.add_argument("--exports", type=Path, default=Path("runs/plmarker-re-exports"))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    e = a.exports
    fp32 = {"ner": export(a.ner, e / "ner-fp32"), "rel": export(a.relations, e / "re-fp32")}
    int8 = {"ner": export(a.ner, e / "ner-int8", "--precision", "int8", "--fp32-from", str(fp32["ner"])),
            "rel": export(a.relations, e / "re-int8", "--precision", "int8", "--fp32-from", str(fp32["rel"]))}
    opts = {"threads": a.threads or None}
    variants = {
        "torch fp32": (Runtime.load(a.ner, backend="torch", **opts), Runtime.load(a.relations, backend="torch", **opts)),
        "onnxruntime fp32": (Runtime.load(fp32["ner"], **opts), Runtime.load(fp32["rel"], **opts)),
        "onnxruntime int8": (Runtime.load(int8["ner"], **opts), Runtime.load(int8["rel"], **opts)),
    }
    docs = [dataclasses.replace(d, entities=[], relations=None) for d in load_documents(a.docs)]
    n_sents = sum(len(d.sents) for d in docs)
    bs = a.batch_size
    for ner, rel in variants.values():  # warm-up: sessions, kernels
        one_round(ner, rel, docs[:bs], bs)
    rounds: dict[str, list] = {k: [] for k in variants}
    for _ in range(a.rounds):
        for name, (ner, rel) in variants.items():
            rounds[name].append(one_round(ner, rel, docs, bs))
    rows = {}
    for name, rs in rounds.items():
        total = statistics.median(r[0] + r[1] for r in rs)
        mid = min(rs, key=lambda r: abs(r[0] + r[1] - total))
        rows[name] = {"ner_s": mid[0], "relations_s": mid[1], "total_s": mid[0] + mid[1], "mentions": mid[2], "relations": mid[3],
                      "ner_sents_per_s": n_sents / mid[0], "relations_sents_per_s": n_sents / mid[1],
                      "sents_per_s": n_sents / (mid[0] + mid[1]), "names": [v.name for v in variants[name]]}
    base = rows["torch fp32"]["sents_per_s"]
    report = {"docs": a.docs, "n_docs": len(docs), "n_sentences": n_sents, "batch_size": bs, "rounds": a.rounds,
              "cpu": cpu_info().describe(), "threads": torch.get_num_threads(), "variants": rows}
    lines = [f"{len(docs)} documents ({n_sents} sentences) from `{a.docs}`, words given, batch {bs}, {report['threads']} threads, "
             f"median of {a.rounds} round-robin rounds, CPU {report['cpu']}", "",
             "| variant | NER sents/s | relations sents/s | NER + relations sents/s | x torch | mentions | relations |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {k} | {r['ner_sents_per_s']:.1f} | {r['relations_sents_per_s']:.1f} | {r['sents_per_s']:.1f} | "
              f"{r['sents_per_s'] / base:.2f} | {r['mentions']} | {r['relations']} |" for k, r in rows.items()]
    print("\n".join(lines))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "speed.md").write_text("\n".join(lines) + "\n")
        (a.out / "speed.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
