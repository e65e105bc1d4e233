"""An entity model on SHORT texts: gold DocRED documents cut into pieces of a few sentences, each piece one input.

    PYTHONPATH=. python benchmarks/ner_short_texts.py --ner MODEL --data FILE[start:stop] [--sentences 1]
        [--variant "" --variant prune_ratio=0 --variant prune_min_spans=0 ...] [--case lower] [--name NAME] [--write]

Users send a line or a paragraph, not a 200-word DocRED document. Candidate pruning keeps
max(ceil(prune_ratio x words), prune_min_spans) candidates per window; on a short piece the ratio alone leaves a
handful, which the boundary sums of its few entities' starts and ends fill. Each variant (comma-separated serving
settings over the model's own, "" for the model as it is) is scored with typed and untyped exact-span mention
P/R/F1 over all pieces. The pieces are given pre-tokenized (`sents`), so only the entity model is measured.
`--write` stores the table in benchmarks/results/ner-short-texts/NAME.md and .json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from docunet.cli.common import SettingType
from docunet.documents import Document, Mention
from docunet.e2e_metrics import PRF
from docunet.pipeline.bundle import is_pipeline, read_bundle
from docunet.readers import load_documents
from docunet.runtime import Runtime
from one_case_end_to_end import CHANGE, recased

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ner-short-texts"


def pieces(docs: list[Document], n: int) -> list[Document]:
    """Each document cut into pieces of n sentences, with the gold mentions that fall in each."""
    out = []
    for d in docs:
        for a in range(0, len(d.sents), n):
            ents = [[Mention(m.sent_id - a, m.start, m.end, m.type, m.name) for m in e if a <= m.sent_id < a + n] for e in d.entities]
            out.append(dataclasses.replace(d, title=f"{d.title} [{a}]", sents=d.sents[a:a + n], entities=[e for e in ents if e],
                                           relations=[]))
    return out


def parse_variant(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        key, value = SettingType().convert(item, None, None)  # as docunet-run --setting reads it
        out[key] = value
    return out


def prf(predicted: set, gold: set) -> dict[str, float]:
    s = PRF.of(predicted, gold)
    return {"P": s.precision, "R": s.recall, "F1": s.f1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ner", required=True, help="entity model (checkpoint or export) or a pipeline bundle")
    ap.add_argument("--data", required=True, help="gold DocRED documents, FILE[start:stop]")
    ap.add_argument("--sentences", type=int, default=1, help="sentences per piece")
    ap.add_argument("--variant", action="append", default=None, help='serving settings, e.g. "prune_ratio=0" ("": none)')
    ap.add_argument("--case", choices=tuple(CHANGE), default="as-is",
                    help="give the words lower- or upper-cased (text from speech recognition, headlines), or lower-cased "
                         "but for each sentence's first letter (speech recognition with punctuation restored)")
    ap.add_argument("--name", default="short-texts")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    if not Path(args.data.split("[")[0]).exists():
        print(f"skipped: {args.data} is not available")
        return 0
    ner_dir, own = args.ner, {}
    if is_pipeline(args.ner):
        bundle = read_bundle(args.ner)
        ner_dir, own = bundle.ner, bundle.ner_settings
    docs = pieces(load_documents(args.data), args.sentences)
    docs = recased(docs, args.case)
    gold = {(i, m.sent_id, m.start, m.end, m.type) for i, d in enumerate(docs) for e in d.entities for m in e}
    words = sum(len(s) for d in docs for s in d.sents) / max(len(docs), 1)
    rows = []
    for variant in args.variant or ["", "prune_ratio=0", "prune_min_spans=0"]:
        settings = {**own, **parse_variant(variant)}
        rt = Runtime.load(ner_dir, settings=settings or None)
        t0 = time.perf_counter()
        found = set()
        for i, p in enumerate(rt.predict([{"sents": d.sents, "title": d.title} for d in docs], batch_size=args.batch_size)):
            if p.error is not None:
                raise SystemExit(f"{docs[i].title}: {p.error}")
            found |= {(i, m.sent_id, m.start, m.end, m.type) for m in p.mentions}
        seconds = time.perf_counter() - t0
        untyped = lambda s: {x[:4] for x in s}  # noqa: E731
        rows.append({"variant": variant or "(the model's settings)", "settings": settings, "typed": prf(found, gold),
                     "untyped": prf(untyped(found), untyped(gold)), "predicted": len(found), "seconds": seconds,
                     "prune_min_spans": rt.config.prune_min_spans, "prune_ratio": rt.config.prune_ratio})
    lines = [f"entity model: {args.ner}; data: {args.data} cut into {len(docs)} pieces of {args.sentences} sentence(s)"
             f"{'' if args.case == 'as-is' else ', words ' + args.case + '-cased'}, "
             f"{words:.1f} words each on average, {len(gold)} gold mentions", "",
             "| variant | prune_ratio / prune_min_spans | typed P / R / F1 | untyped F1 | mentions predicted | seconds |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        t = r["typed"]
        lines.append(f"| {r['variant']} | {r['prune_ratio']} / {r['prune_min_spans']} | {100 * t['P']:.2f} / {100 * t['R']:.2f} / "
                     f"{100 * t['F1']:.2f} | {100 * r['untyped']['F1']:.2f} | {r['predicted']} | {r['seconds']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{args.name}.md").write_text(table + "\n")
        (OUT / f"{args.name}.json").write_text(json.dumps({"ner": str(args.ner), "data": args.data, "sentences": args.sentences, "case": args.case,
                                                           "rows": rows}, indent=2) + "\n")
        print(f"wrote {OUT / args.name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
