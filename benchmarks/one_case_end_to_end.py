"""The whole pipeline on text in one case: gold DocRED documents lower-cased or upper-cased, given as text.

    PYTHONPATH=. python benchmarks/one_case_end_to_end.py --model BUNDLE --data FILE[start:stop]
        [--case as-is --case lower --case upper] [--variant "" --variant ner.one_case_shapes=literal] [--write]

Speech recognition, chat and headlines lose capitalisation (all lower case, all capitals, or capitals only where
sentences start), which the entity model reads through its word shapes.
Each (case, variant) row is `docunet-eval`'s end-to-end mode (docunet.pipeline.evaluate) on the changed documents:
JEREX's mention, entity and entity + type F1 and strict relation F1, with the bundle's settings overridden by the
variant (comma-separated --setting pairs, "" for none). `--write` stores the table in
benchmarks/results/one-case/NAME.md and .json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from docunet.cli.common import SettingType, runtime_settings
from docunet.documents import Document
from docunet.pipeline.evaluate import evaluate_pipeline
from docunet.readers import load_documents
from docunet.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "one-case"
def sentence_case(words: list[str]) -> list[str]:
    """A sentence's words lower-cased but for its first letter (speech recognition with punctuation restored)."""
    return [w.lower() if i else w[:1].upper() + w[1:].lower() for i, w in enumerate(words)]


CHANGE = {"as-is": None, "lower": lambda s: [w.lower() for w in s], "upper": lambda s: [w.upper() for w in s],
          "sentence": sentence_case}


def recased(docs: list[Document], case: str) -> list[Document]:
    """The documents with every sentence's words changed to `case` (a CHANGE key; "as-is": unchanged)."""
    change = CHANGE[case]
    return docs if change is None else [dataclasses.replace(d, sents=[change(s) for s in d.sents]) for d in docs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a pipeline bundle")
    ap.add_argument("--data", required=True, help="gold DocRED documents, FILE[start:stop]")
    ap.add_argument("--case", action="append", choices=tuple(CHANGE), default=None)
    ap.add_argument("--variant", action="append", default=None, help='--setting pairs, e.g. "ner.one_case_shapes=literal"')
    ap.add_argument("--name", default="one-case")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    if not Path(args.data.split("[")[0]).exists():
        print(f"skipped: {args.data} is not available")
        return 0
    golds = load_documents(args.data)
    rows = []
    for variant in args.variant or ["", "ner.one_case_shapes=literal"]:
        pairs = tuple(SettingType().convert(item, None, None) for item in filter(None, variant.split(",")))
        pipeline = Runtime.load(args.model, **runtime_settings(pairs))
        for case in args.case or ["as-is", "lower", "upper"]:
            docs = recased(golds, case)
            t0 = time.perf_counter()
            r = evaluate_pipeline(pipeline, docs, batch_size=args.batch_size)
            e = r["end_to_end"]
            rows.append({"case": case, "variant": variant or "(the bundle's settings)", "seconds": time.perf_counter() - t0,
                         "failed": r["failed"], **{k: e[k]["f1"] for k in ("mentions", "entities", "entities_typed",
                                                                            "relations", "relations_strict")},
                         "gold_entities_strict": r["gold_entities"]["relations_strict"]["f1"]})
    cols = ("mentions", "entities", "entities_typed", "relations", "relations_strict", "gold_entities_strict")
    lines = [f"bundle: {args.model}; data: {args.data}, {len(golds)} documents given as text", "",
             "| case | variant | " + " | ".join(f"{c} F1" for c in cols) + " | failed | seconds |", "|---" * (len(cols) + 4) + "|"]
    lines += [f"| {r['case']} | {r['variant']} | " + " | ".join(f"{100 * r[c]:.2f}" for c in cols)
              + f" | {r['failed']} | {r['seconds']:.1f} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{args.name}.md").write_text(table + "\n")
        (OUT / f"{args.name}.json").write_text(json.dumps({"model": args.model, "data": args.data, "rows": rows}, indent=2) + "\n")
        print(f"wrote {OUT / args.name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
