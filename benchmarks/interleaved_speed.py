"""Docs/s of several models on the same DocRED documents, measured round-robin in one process: each round runs
every model once, and each model's median round is reported beside its ratio to the first model, per round
and overall, in wall time and in this process's CPU time (docs per CPU-second: what a host that steals time from
this machine's cores does not change; ONNX Runtime's threads do not spin here, so CPU time is work). For shared, noisy CPUs, where runs back to back drift more than the differences measured (one
docunet-bench run refuses two exports that serve under the same name, e.g. the same checkpoint exported by two
versions of the code).

    python benchmarks/interleaved_speed.py --docs '../shared/data/docred/test.json[0:50]' --rounds 5 \\
        LABEL=MODEL_DIR [LABEL=MODEL_DIR ...] [--grid-fit 14] [--out DIR]

Entity models (PL-Marker NER) read the documents as split text (their words, no annotations); relation models
(DocuNet) read them with their gold entities: the gold-entity path.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from docunet.engines.cpu import cpu_info
from docunet.readers import load_documents
from docunet.runtime import Runtime
from docunet.text import document_from_text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="LABEL=MODEL_DIR (a checkpoint or export)")
    p.add_argument("--docs", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="batches in flight per model (Runtime workers, 1 thread each)")
    p.add_argument("--grid-fit", type=int, default=None, help="relation models' grid_fit (docunet-bench's +fitK)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    gold = load_documents(a.docs)
    split = [document_from_text(d.surface(), d.title) for d in gold]
    runs = []
    for spec in a.models:
        label, _, path = spec.partition("=")
        rt = Runtime.load(path, threads=1, workers=a.workers)
        if rt.family.output != "mentions" and a.grid_fit:
            rt = Runtime.load(path, threads=1, workers=a.workers, grid_fit=a.grid_fit)
        docs = split if rt.family.output == "mentions" else gold
        list(rt.predict(docs[: a.batch_size], batch_size=a.batch_size))  # warm-up
        runs.append((label, rt, docs))
    seconds: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for _ in range(a.rounds):
        for label, rt, docs in runs:
            t0, c0 = time.perf_counter(), time.process_time()
            list(rt.predict(docs, batch_size=a.batch_size))
            seconds[label].append(time.perf_counter() - t0)
            cpu[label].append(time.process_time() - c0)
    n, first = len(gold), runs[0][0]
    lines = [f"{n} documents from `{a.docs}`, batch {a.batch_size}, {a.workers} worker(s) x 1 thread, {a.rounds} rounds "
             f"round-robin, CPU {cpu_info().describe()}", "",
             f"| model | served as | median docs/s | docs/s by round | ratio to {first}: median of rounds | docs per CPU-second "
             f"(median) | ratio to {first} in CPU time |", "|---|---|---|---|---|---|---|"]
    report = {"docs": a.docs, "n_docs": n, "rounds": a.rounds, "cpu": cpu_info().describe(), "models": {}}
    for label, rt, _ in runs:
        per_round = [s0 / s for s0, s in zip(seconds[first], seconds[label])]
        rate = n / statistics.median(seconds[label])
        cpu_ratio = statistics.median([c0 / c for c0, c in zip(cpu[first], cpu[label])])
        cpu_rate = n / statistics.median(cpu[label])
        report["models"][label] = {"served_as": rt.name, "seconds": seconds[label], "median_docs_per_s": rate,
                                   "ratio_to_first_median": statistics.median(per_round), "cpu_seconds": cpu[label],
                                   "docs_per_cpu_second": cpu_rate, "cpu_ratio_to_first_median": cpu_ratio}
        name = rt.name + (f"+fit{a.grid_fit}" if a.grid_fit and rt.family.output != "mentions" else "")
        report["models"][label]["served_as"] = name
        lines.append(f"| {label} | {name} | {rate:.2f} | {', '.join(f'{n / s:.2f}' for s in seconds[label])} | "
                     f"{statistics.median(per_round):.3f} | {cpu_rate:.2f} | {cpu_ratio:.3f} |")
    print("\n".join(lines))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "interleaved_speed.md").write_text("\n".join(lines) + "\n")
        (a.out / "interleaved_speed.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
