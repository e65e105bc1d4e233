"""Raw-text pipeline speed on CPU, stage by stage, beside the relation model's gold-entity path.

    python benchmarks/pipeline_speed.py BUNDLE --docs '../shared/data/docred/test.json[0:100]' [--batch-size 8]

DocRED documents are given as text (their words joined by single spaces). Stages, each timed on its own
over all documents: split (text -> sentences and words), NER (the bundle's entity model on the split
documents), coreference (rules), relations (the relation model on the resulting documents), and the whole
pipeline end to end (text in, one call); beside them the gold-entity path (the relation model on the
DocRED documents with their own entities). Prints a markdown table with the CPU; --out writes it and the
JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from docunet.engines.cpu import cpu_info
from docunet.readers import load_documents
from docunet.runtime import Runtime
from docunet.runtime.pipeline import entities_of, with_entities
from docunet.text import document_from_text


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--docs", required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="batches in flight per model (Runtime workers)")
    p.add_argument("--ner-prune", type=float, default=None, help="serve the entity model with this prune ratio")
    p.add_argument("--rounds", type=int, default=1, help="time every stage this many times, round-robin, and report each "
                   "stage's median (for noisy shared machines)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    options = {"threads": a.threads or None, "workers": a.workers}
    if a.ner_prune is not None:
        options["ner_settings"] = {"prune_ratio": a.ner_prune}
    pipe = Runtime.load(a.bundle, **options)
    gold = load_documents(a.docs)
    n, bs = len(gold), a.batch_size
    texts = [d.surface() for d in gold]
    list(pipe.predict(texts[:bs], batch_size=bs))  # warm-up (spaCy load, sessions)
    times: dict[str, list[float]] = {k: [] for k in ("split", "ner", "coref", "rel", "e2e", "gold")}
    for _ in range(max(1, a.rounds)):
        split, t = timed(lambda: [document_from_text(t, d.title) for t, d in zip(texts, gold)])
        times["split"].append(t)
        ner, t = timed(lambda: list(pipe.ner.predict(split, batch_size=bs)))
        times["ner"].append(t)
        ents, t = timed(lambda: [entities_of(p.document, p.mentions, pipe.coref) for p in ner])
        times["coref"].append(t)
        docs = [with_entities(p.document, e) for p, e in zip(ner, ents) if len(e) >= 2]
        _, t = timed(lambda: list(pipe.relations.predict(docs, batch_size=bs)))
        times["rel"].append(t)
        e2e, t = timed(lambda: list(pipe.predict(texts, batch_size=bs)))
        times["e2e"].append(t)
        _, t = timed(lambda: list(pipe.relations.predict(gold, batch_size=bs)))
        times["gold"].append(t)
    t_split, t_ner, t_coref, t_rel, t_e2e, t_gold = (statistics.median(times[k]) for k in times)
    rows = [("split (spaCy)", t_split, n), ("NER", t_ner, n), ("coreference", t_coref, n), ("relations", t_rel, len(docs)),
            ("end to end (text in)", t_e2e, n), ("gold-entity path (relation model alone)", t_gold, n)]
    report = {"bundle": a.bundle, "docs": a.docs, "n_docs": n, "batch_size": bs, "cpu": cpu_info().describe(), "rounds": a.rounds,
              "seconds_by_round": times,
              "threads": torch.get_num_threads(), "name": pipe.name,
              "mentions": sum(len(p.mentions) for p in ner), "entities": sum(map(len, ents)), "errors": sum(p.error is not None for p in e2e),
              "stages": {name: {"seconds": s, "docs": k, "docs_per_s": k / s} for name, s, k in rows},
              "end_to_end_over_gold_path": (n / t_e2e) / (n / t_gold)}
    lines = [f"{n} documents from `{a.docs}` as text, batch {bs}, {report['threads']} threads, {a.workers} worker(s) per model, "
             + (f"median of {a.rounds} rounds, " if a.rounds > 1 else "") +
             f"CPU {report['cpu']}; {pipe.name}", "",
             "| stage | documents | seconds | docs/s |", "|---|---|---|---|"]
    lines += [f"| {name} | {k} | {s:.2f} | {k / s:.2f} |" for name, s, k in rows]
    lines += ["", f"End to end at {report['end_to_end_over_gold_path']:.2f}x the gold-entity path's docs/s; "
              f"{report['mentions']} mentions, {report['entities']} entities, {report['errors']} errors."]
    print("\n".join(lines))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "pipeline_speed.md").write_text("\n".join(lines) + "\n")
        (a.out / "pipeline_speed.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
