"""Rule coreference from GOLD mentions: what each rule of `docunet.coref` adds.

    PYTHONPATH=. python benchmarks/coref_rules.py [--data ../shared/data/redocred/dev_revised.json] [--write]

For each slice (documents [0:400] and [400:500] of Re-DocRED dev) and each rule set, the gold
mention spans (duplicates removed: a span in several gold entities stays in the first) are
clustered from their words and gold types, and scored against the gold entities with JEREX's
exact-cluster P/R/F1 (a predicted entity counts only if its span set equals a gold entity's) and
the CoNLL coreference metrics MUC, B3 and CEAFe (singletons included). `--write` stores the tables
in benchmarks/results/coref-rules/README.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from docunet.coref import CorefRules, cluster_mentions, entities_from_clusters
from docunet.documents import Document, Mention
from docunet.e2e_metrics import e2e_scores
from docunet.metrics import f1_score
from docunet.readers import load_documents

try:
    from scipy.optimize import linear_sum_assignment
except ImportError:  # CEAFe needs an optimal assignment; it is left out without scipy
    linear_sum_assignment = None

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "redocred" / "dev_revised.json"
OUT = ROOT / "benchmarks" / "results" / "coref-rules" / "README.md"
SLICES = ("0:400", "400:500")

NONE = CorefRules(string_match=False, cross_type="none", person_names=False, acronyms=False)
TYPED = CorefRules(cross_type="none")
RULE_SETS: list[tuple[str, CorefRules]] = [
    ("every mention alone", NONE),
    ("exact string", dataclasses.replace(NONE, string_match=True, normalise=False, cross_type="exact")),
    ("exact string + type", dataclasses.replace(NONE, string_match=True, normalise=False)),
    ("normalised string + type", dataclasses.replace(NONE, string_match=True)),
    ("+ PER first/last name", dataclasses.replace(NONE, string_match=True, person_names=True)),
    ("+ acronyms", TYPED),
    ("+ cross-type, exact strings", CorefRules(cross_type="exact")),
    ("+ cross-type, normalised strings (default)", CorefRules()),
    ("default, raw strings (no normalising)", CorefRules(normalise=False)),
    ("default + full name later (names_any_order)", CorefRules(names_any_order=True)),
    ("default + demonyms", CorefRules(demonyms=True)),
    ("default + years", CorefRules(years=True)),
    ("default + partial names", CorefRules(partial_names=True)),
]

Cluster = frozenset  # of (sent_id, start, end)


def gold_entities(doc: Document) -> list[list[Mention]]:
    """Gold entities with duplicate spans removed (a span in several entities stays in the first)."""
    seen: set[tuple[int, int, int]] = set()
    out = []
    for entity in doc.entities:
        kept = []
        for m in entity:
            span = (m.sent_id, m.start, m.end)
            if span not in seen:
                seen.add(span)
                kept.append(Mention(m.sent_id, m.start, m.end, m.type, " ".join(doc.sents[m.sent_id][m.start:m.end])))
        if kept:
            out.append(kept)
    return out


def _spans(entities: list[list[Mention]]) -> list[Cluster]:
    return [frozenset((m.sent_id, m.start, m.end) for m in e) for e in entities]


def muc_counts(key: list[Cluster], response: list[Cluster]) -> tuple[int, int]:
    """(numerator, denominator) of MUC recall of `response` against `key` (swap them for precision)."""
    where = {span: i for i, c in enumerate(response) for span in c}
    num = den = 0
    for c in key:
        parts = {where.get(span, ("alone", span)) for span in c}
        num += len(c) - len(parts)
        den += len(c) - 1
    return num, den


def b3_counts(key: list[Cluster], response: list[Cluster]) -> tuple[float, int]:
    """(sum over key mentions of |K ∩ R| / |K|, number of key mentions): B3 recall's parts."""
    where = {span: c for c in response for span in c}
    total = 0.0
    for c in key:
        for span in c:
            total += len(c & where.get(span, frozenset())) / len(c)
    return total, sum(len(c) for c in key)


def ceafe_similarity(key: list[Cluster], response: list[Cluster]) -> float:
    """The best one-to-one alignment's total phi4 similarity (2|K ∩ R| / (|K| + |R|))."""
    if not key or not response:
        return 0.0
    where = {span: j for j, c in enumerate(response) for span in c}
    sim = [[0.0] * len(response) for _ in key]
    for i, c in enumerate(key):
        for span in c:
            if span in where:
                j = where[span]
                sim[i][j] = 2 * len(c & response[j]) / (len(c) + len(response[j]))
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sum(sim[i][j] for i, j in zip(rows, cols)))


def cluster_scores(pairs: list[tuple[list[list[Mention]], list[list[Mention]], list[list[str]]]]) -> dict[str, float]:
    """(gold entities, predicted entities, sentences) per document -> exact-cluster P/R/F1 (JEREX), MUC, B3 and,
    with scipy, CEAFe and the CoNLL mean."""
    golds, preds = [], []
    muc = [0, 0, 0, 0]  # recall num/den, precision num/den
    b3 = [0.0, 0, 0.0, 0]
    ceaf = [0.0, 0, 0]  # similarity, key clusters, response clusters
    for gold, pred, sents in pairs:
        golds.append(Document("", sents, gold, []))
        preds.append(Document("", sents, pred, []))
        key, response = _spans(gold), _spans(pred)
        for k, (a, b) in enumerate((muc_counts(key, response), muc_counts(response, key))):
            muc[2 * k] += a
            muc[2 * k + 1] += b
        for k, (a, b) in enumerate((b3_counts(key, response), b3_counts(response, key))):
            b3[2 * k] += a
            b3[2 * k + 1] += b
        if linear_sum_assignment is not None:
            ceaf[0] += ceafe_similarity(key, response)
            ceaf[1] += len(key)
            ceaf[2] += len(response)
    exact = e2e_scores(golds, preds).entities
    out = {"P": exact.precision, "R": exact.recall, "F1": exact.f1,
           "MUC": f1_score(muc[0] / max(muc[1], 1), muc[2] / max(muc[3], 1)),
           "B3": f1_score(b3[0] / max(b3[1], 1), b3[2] / max(b3[3], 1))}
    if linear_sum_assignment is not None:
        out["CEAFe"] = f1_score(ceaf[0] / max(ceaf[1], 1), ceaf[0] / max(ceaf[2], 1))
        out["CoNLL mean"] = (out["MUC"] + out["B3"] + out["CEAFe"]) / 3
    return out


def score(docs: list[Document], rules: CorefRules) -> dict[str, float]:
    pairs = []
    seconds = 0.0
    for doc in docs:
        gold = gold_entities(doc)
        mentions = sorted((m for e in gold for m in e), key=lambda m: (m.sent_id, m.start, m.end))
        t0 = time.perf_counter()
        pred = entities_from_clusters(mentions, cluster_mentions(mentions, rules))
        seconds += time.perf_counter() - t0
        pairs.append((gold, pred, doc.sents))
    out = cluster_scores(pairs)
    out["ms/doc"] = 1000 * seconds / max(len(docs), 1)
    return out


def table(docs: list[Document]) -> str:
    rows = [(name, score(docs, rules)) for name, rules in RULE_SETS]
    cols = list(rows[0][1])
    lines = ["| rule set | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, s in rows:
        cells = [f"{s[c]:.3f}" if c == "ms/doc" else f"{100 * s[c]:.2f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--write", action="store_true", help=f"write the tables to {OUT.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} is not available")
        return 0
    parts = []
    for sl in SLICES:
        docs = load_documents(f"{args.data}[{sl}]")
        n_mentions = sum(len(e) for d in docs for e in gold_entities(d))
        n_entities = sum(len(gold_entities(d)) for d in docs)
        parts.append(f"### documents [{sl}]: {len(docs)} documents, {n_mentions} mentions, {n_entities} entities\n\n"
                     + table(docs))
        print(parts[-1] + "\n", flush=True)
    if args.write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(HEADER + "\n\n".join(parts) + "\n" + (FOOTER if linear_sum_assignment is not None else NO_CEAF))
        print(f"wrote {OUT}")
    return 0


HEADER = """# Rule coreference from gold mentions (Re-DocRED dev)

    PYTHONPATH=. python benchmarks/coref_rules.py --write

Gold mention spans of `../shared/data/redocred/dev_revised.json` (duplicate spans removed; a span
in several gold entities stays in the first) are clustered by `docunet.coref.cluster_mentions`
from their words and gold types. P/R/F1: JEREX's entity metric (a predicted entity counts only
if its set of mention spans equals a gold entity's). MUC, B3, CEAFe: CoNLL coreference F1s over
all mentions, singletons included; CoNLL mean is their average. ms/doc: clustering time per document.
Each row adds one rule to the row above it up to the default (cross-type merging of normalised strings); the
rows after it vary the default or add a rule that is off by default.

"""
FOOTER = """
Reading:
- PER first/last names (+2.4 / +1.7 exact-cluster F1) and acronyms (+0.8 / +0.6) are the rules
  that matter, on both slices and every metric.
- Normalising is a wash on gold mentions: its merges ("the United States" ~ "United States",
  "Tears For Fears" ~ "Tears for Fears", "Bangladesh’" ~ "Bangladesh") are right by eye but
  Re-DocRED keeps several such pairs as two entities.
- Merging identical strings across types costs a little on gold mentions (-0.3 on [0:400], +0.0 on
  [400:500]), whose types are consistent. It is the default because mentions found by the entity
  model are typed inconsistently now and then ("Opel" ORG here, MISC there): on predicted mentions
  it gains +0.8 entity F1 on the documents the rules are chosen on and +0.7 on [400:500]
  (benchmarks/results/coref-predicted).
- The four rules that are off by default all lose on both slices: demonyms (-1.0 / -0.8;
  Re-DocRED more often keeps "French" and "France" apart than not), a bare year joining the date that
  ends in it (-0.1 / -0.0), a one-word name joining a full name that comes later (-0.2 / -0.4)
  and a name that begins or ends a longer one of the same type (-1.5 / -2.1). They stay as
  switches (`--setting coref.demonyms=true`) for annotation schemes that do merge them.
- Every mention comes from gold here; with predicted mentions, missed or misplaced mentions lower
  every number (an entity counts only with its exact mention set): benchmarks/coref_predicted.py.
"""
NO_CEAF = "\nCEAFe is left out: scipy is not installed.\n"

if __name__ == "__main__":
    sys.exit(main())
