"""Rule coreference on PREDICTED mentions: what each rule set of `docunet.coref` gives end to end.

    PYTHONPATH=. python benchmarks/coref_predicted.py --ner MODEL --data FILE[start:stop] [--name NAME] [--write]

An entity model (a checkpoint or export, or a pipeline bundle, whose entity model and its settings are used) finds
the mentions of gold DocRED documents given as text (words joined by single spaces, as `docunet-eval`'s end-to-end
mode does); each rule set of benchmarks/coref_rules.py clusters them into entities, which are scored with JEREX's
definitions (docunet.e2e_metrics): mention F1, entity F1 (exact mention set) and entity + type F1. Two reference rows:
"oracle" puts each predicted mention that is exactly a gold mention into its gold entity (the best any coreference
can do with these mentions) and "gold mentions" clusters the gold mentions with the default rules. `--write` stores
the table in benchmarks/results/coref-predicted/NAME.md and .json.

Selection protocol of the shipped rules: choose on DocRED test.json documents with an entity model that never saw
them (trained on Re-DocRED [0:400] only), then report on Re-DocRED [400:500] with the shipped bundle.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from coref_rules import RULE_SETS, gold_entities

from docunet.coref import DEFAULT_RULES, CorefRules, cluster_mentions, entities_from_clusters
from docunet.documents import Document
from docunet.e2e_metrics import e2e_scores
from docunet.pipeline.bundle import is_pipeline, read_bundle
from docunet.pipeline.evaluate import predicted_document
from docunet.readers import load_documents
from docunet.runtime import Runtime
from docunet.runtime.pipeline import entities_of

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "coref-predicted"


def oracle_entities(gold: Document, predicted: Document) -> list[list[int]]:
    """Clusters of predicted mention indices: those that are exactly a gold mention grouped by its gold entity, every
    other one alone."""
    owner = {}
    for k, entity in enumerate(gold.entities):
        for m in entity:
            owner.setdefault((m.sent_id, m.start, m.end), k)
    groups: dict[object, list[int]] = {}
    for j, entity in enumerate(predicted.entities):
        m = entity[0]
        groups.setdefault(owner.get((m.sent_id, m.start, m.end), ("alone", j)), []).append(j)
    return list(groups.values())


def where_entities_are_lost(golds: list[Document], predicted: list[Document]) -> dict[str, int]:
    """Each gold entity counted once: found exactly; lost to the entity model (one of its mentions not predicted with
    that span); or lost to coreference (every mention predicted, but not as one entity of exactly those mentions)."""
    out = {"gold entities": 0, "found exactly": 0, "lost to the entity model": 0, "lost to coreference": 0}
    for g, p in zip(golds, predicted):
        entities = {frozenset((m.sent_id, m.start, m.end) for m in e) for e in p.entities}
        spans = set().union(*entities) if entities else set()
        for e in g.entities:
            gold = frozenset((m.sent_id, m.start, m.end) for m in e)
            out["gold entities"] += 1
            key = "found exactly" if gold in entities else "lost to coreference" if gold <= spans else "lost to the entity model"
            out[key] += 1
    return out


def scores(golds: list[Document], predicted: list[Document]) -> dict[str, float]:
    s = e2e_scores(golds, predicted)
    return {"mentions F1": s.mentions.f1, "entities P": s.entities.precision, "entities R": s.entities.recall,
            "entities F1": s.entities.f1, "entities + type F1": s.entities_typed.f1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ner", required=True, help="entity model (checkpoint or export) or a pipeline bundle")
    ap.add_argument("--data", required=True, help="gold DocRED documents, FILE[start:stop]")
    ap.add_argument("--name", default="predicted")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--write", action="store_true", help=f"write NAME.md and NAME.json to {OUT.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    data_path = args.data.split("[")[0]
    if not Path(data_path).exists():
        print(f"skipped: {data_path} is not available")
        return 0
    ner_dir, settings = args.ner, None
    if is_pipeline(args.ner):
        bundle = read_bundle(args.ner)
        ner_dir, settings = bundle.ner, bundle.ner_settings or None
    golds = load_documents(args.data)
    ner = Runtime.load(ner_dir, settings=settings)
    t0 = time.perf_counter()
    found = list(ner.predict([{"text": d.surface(), "title": d.title} for d in golds], batch_size=args.batch_size))
    ner_seconds = time.perf_counter() - t0
    failed = [p.error for p in found if p.error is not None]
    if failed:
        raise SystemExit(f"{len(failed)} documents failed in the entity model; the first: {failed[0]}")
    rows: list[tuple[str, dict[str, float]]] = []
    lost = {}
    for label, rules in [*RULE_SETS]:
        predicted = [predicted_document(g, entities_of(p.document, p.mentions, rules), []) for g, p in zip(golds, found)]
        rows.append((label, scores(golds, predicted)))
        if rules == DEFAULT_RULES:
            lost = where_entities_are_lost(golds, predicted)
    singletons = [predicted_document(g, entities_of(p.document, p.mentions, CorefRules(string_match=False, person_names=False,
                                                                                           acronyms=False)), [])
                  for g, p in zip(golds, found)]
    oracle = [dataclasses.replace(d, entities=[[m for j in c for m in d.entities[j]] for c in oracle_entities(g, d)])
              for g, d in zip(golds, singletons)]
    rows.append(("oracle coreference (gold entity of each exact mention)", scores(golds, oracle)))
    gold_mentions = []
    for g in golds:
        ms = sorted((m for e in gold_entities(g) for m in e), key=lambda m: (m.sent_id, m.start, m.end))
        gold_mentions.append(dataclasses.replace(g, entities=entities_from_clusters(ms, cluster_mentions(ms, DEFAULT_RULES)),
                                                relations=[]))
    rows.append(("gold mentions, default rules", scores(golds, gold_mentions)))
    cols = list(rows[0][1])
    lines = [f"entity model: {args.ner} (settings {settings or {}}); data: {args.data}, {len(golds)} documents; "
             f"entity model {ner_seconds:.1f} s", "",
             "| rule set | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(f"{100 * s[c]:.2f}" for c in cols) + " |" for label, s in rows]
    if lost:
        lines += ["", "Where the default rules' gold entities go: " + ", ".join(f"{k} {v}" for k, v in lost.items())]
    table = "\n".join(lines)
    print(table)
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{args.name}.md").write_text(table + "\n")
        (OUT / f"{args.name}.json").write_text(json.dumps({"ner": str(args.ner), "data": args.data, "settings": settings,
                                                           "rows": dict(rows), "default_rules_gold_entities": lost}, indent=2) + "\n")
        print(f"wrote {OUT / args.name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
