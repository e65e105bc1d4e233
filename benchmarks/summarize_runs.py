"""Print the README's training-results table from docunet-train output directories.

Usage: python benchmarks/summarize_runs.py runs/redocred-unet runs/redocred-nounet ...
Per run: the best dev epoch (P/R/F1/Ign F1), the dev F1 of every epoch, mean seconds per step and per
epoch (and the fastest epoch's seconds per step: the closest to a quiet machine), peak memory, and the test scores when the run had --test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def summarize(run: Path) -> str:
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    best = max(log, key=lambda r: r["dev_f1"])
    per_epoch = " ".join(f"{100 * r['dev_f1']:.1f}" for r in log)
    step = sum(r["seconds_per_step"] for r in log) / len(log)
    fastest = min(r["seconds_per_step"] for r in log)  # the epoch closest to a quiet machine
    epoch = sum(r["train_seconds"] for r in log) / len(log)
    summary = run / "train_summary.json"
    test = json.loads(summary.read_text()).get("test") if summary.exists() else None
    test_txt = f"{100 * test['precision']:.2f} / {100 * test['recall']:.2f} / {100 * test['f1']:.2f}" if test else "-"
    return (f"| {run.name} | {len(log)} | {best['epoch']} | {100 * best['dev_precision']:.2f} / {100 * best['dev_recall']:.2f} / "
            f"{100 * best['dev_f1']:.2f} / {100 * best['dev_ign_f1']:.2f} | {test_txt} | {per_epoch} | {step:.2f} ({fastest:.2f}) | {epoch / 60:.1f} | "
            f"{max(r['peak_memory_gb'] for r in log):.2f} |")


if __name__ == "__main__":
    print("| run | epochs run | best epoch | dev P / R / F1 / Ign F1 | test P / R / F1 | dev F1 by epoch | s/step mean (fastest epoch) | min/epoch | peak GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print(summarize(Path(arg)))
