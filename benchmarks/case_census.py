"""How many documents of each data set `featurize.one_case` calls lower, upper or sentence case (None: as written).

    PYTHONPATH=. python benchmarks/case_census.py FILE [FILE ...] [--write]

Text written properly should be called None; every document called "sentence" here would get guessed word shapes
under `one_case_shapes=guess-sentence-case`, which is why that value is not the default. `--write` stores the table
in benchmarks/results/one-case/census.md.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from docunet.models.plmarker.featurize import one_case
from docunet.readers import load_documents

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "one-case"
KINDS = (None, "lower", "upper", "sentence")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="DocRED or DyGIE documents, FILE[start:stop]")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    lines = ["| data | documents | " + " | ".join(str(k or "as written") for k in KINDS) + " |", "|---" * (len(KINDS) + 2) + "|"]
    for spec in args.files:
        if not Path(spec.split("[")[0]).exists():
            print(f"skipped: {spec} is not available")
            continue
        docs = load_documents(spec)
        counts = Counter(one_case(d.sents) for d in docs)
        lines.append(f"| {spec} | {len(docs)} | " + " | ".join(str(counts[k]) for k in KINDS) + " |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "census.md").write_text(f"    PYTHONPATH=. python benchmarks/case_census.py {' '.join(args.files)} --write\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
