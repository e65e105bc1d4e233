"""The SciERC relation table (issue 15) from benchmarks/train_plmarker_re.sh's output directories.

    python benchmarks/summarize_re_runs.py runs/plmarker-re-scierc-untyped runs/plmarker-re-scierc-typed

Per run and split (dev, test; eval-SPLIT.json written by docunet-eval --ner): Ent / Rel / Rel+ F1 on the entities the
NER model predicts (the seed's setting) and Rel / Rel+ F1 on gold entities, beside the dev Rel+ F1 of every epoch
and the minutes per epoch (train_log.jsonl). The seed's table (SciBERT, 10 epochs) is printed under it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SEED = {"untyped": (69.9, 52.0, 40.6), "typed": (69.9, 52.5, 40.9)}


def f1(d: dict, key: str) -> str:
    return f"{100 * d[key]['f1']:.2f}"


def rows(run: Path) -> list[str]:
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines() if x.strip()]
    epochs = " ".join(f"{100 * r['dev_f1']:.2f}" for r in log)
    minutes = sum(r["train_seconds"] for r in log) / len(log) / 60
    typed = json.loads((run / "config.json").read_text()).get("type_markers", False)
    out = []
    for split in ("dev", "test"):
        r = json.loads((run / f"eval-{split}.json").read_text())
        g = r["gold_entities"]
        out.append(f"| {'typed' if typed else 'untyped'} | {split} | {f1(r, 'ent')} | {f1(r, 'rel')} | {f1(r, 'rel+')} | "
                   f"{f1(g, 'rel')} | {f1(g, 'rel+')} | {epochs} | {len(log)} | {minutes:.1f} |")
    return out


if __name__ == "__main__":
    print("| markers | split | Ent F1 | Rel F1 | Rel+ F1 | Rel F1, gold entities | Rel+ F1, gold entities | dev Rel+ F1 by epoch "
          "(gold entities) | epochs | min/epoch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print("\n".join(rows(Path(arg))))
    for kind, (e, r, rp) in SEED.items():
        print(f"| seed, SciBERT, {kind} | test | {e} | {r} | {rp} | | | | 10 | |")
