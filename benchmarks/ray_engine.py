"""The Ray engine against the local one, on the same documents: docs/s, the fixed start-up cost, and the
byte comparison of their outputs.

    python benchmarks/ray_engine.py MODEL_DIR --docs '../shared/data/docred/test.json[0:1000]' --out DIR

Runs (each a fresh `docunet-run` process, so Ray's start-up is included as a user pays it):
- local, 2 threads per call; local, 1 thread (the reference for 2 Ray workers of 1 CPU each);
- Ray, 1 worker with 2 CPUs and 2 threads; Ray, 2 workers with 1 CPU and 1 thread each.
The start-up cost is the wall time on 8 documents. Output files of runs with equal threads per model call
must be byte-identical. Writes DIR/ray_engine.md and DIR/ray_engine.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RUNS = [  # name, engine args, threads per model call
    ("local, 2 threads", [], 2),
    ("local, 1 thread", [], 1),
    ("ray, 1 worker x 2 CPUs", ["--engine", "ray", "--workers", "1", "--cpus-per-worker", "2"], 2),
    ("ray, 2 workers x 1 CPU", ["--engine", "ray", "--workers", "2", "--cpus-per-worker", "1"], 1),
]


def run(model: str, docs: str, out: Path, args: list[str], threads: int, batch_size: int) -> float:
    cmd = ["docunet-run", docs, "--model", model, "--out", str(out), "--overwrite", "--no-progress", "--skip-errors",
           "--batch-size", str(batch_size), "--threads", str(threads), *args]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def driver_write_rate(output: Path) -> float:
    """Documents per second that the driver's ordered writer handles alone (unpickling + writing), from a run's output."""
    import io
    import pickle

    from docunet.documents import PredictedRelation
    from docunet.runtime import Prediction, PredictionWriter

    preds = []
    for i, line in enumerate(output.read_text(encoding="utf-8").splitlines()):
        rec = json.loads(line)
        rels = [PredictedRelation(r["h"], r["t"], r["r"], r["score"], r["margin"], r["relation"], r["h_name"], r["t_name"])
                for r in rec.get("relations", [])]
        preds.append(pickle.dumps([Prediction(i, rec.get("title"), rels, rec.get("error"))]))
    t0 = time.perf_counter()
    writer = PredictionWriter(io.StringIO())
    for blob in preds:
        for p in pickle.loads(blob):
            writer.write(p)
    writer.finish()
    return len(preds) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--docs", required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("bench-ray"))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    base = a.docs.rsplit("[", 1)[0]
    small = f"{base}[0:8]"
    results = []
    for name, args, threads in RUNS:
        slug = name.replace(", ", "-").replace(" ", "_")
        startup = run(a.model, small, a.out / f"{slug}-small.jsonl", args, threads, a.batch_size)
        wall = run(a.model, a.docs, a.out / f"{slug}.jsonl", args, threads, a.batch_size)
        n = sum(1 for _ in open(a.out / f"{slug}.jsonl", encoding="utf-8"))
        results.append({"run": name, "threads": threads, "documents": n, "seconds": round(wall, 1),
                        "docs_per_s": round(n / wall, 2), "startup_seconds_8_docs": round(startup, 1), "file": f"{slug}.jsonl"})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    for r in results:  # byte comparison with the local run of equal threads
        ref = next(x for x in results if x["run"].startswith("local") and x["threads"] == r["threads"])
        if ref is r:
            r["identical_to"] = "(reference)"
        else:
            r["identical_to"] = ref["run"] if (a.out / r["file"]).read_bytes() == (a.out / ref["file"]).read_bytes() else "DIFFERS"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    lines = [f"`python benchmarks/ray_engine.py {a.model} --docs '{a.docs}'` on {os.cpu_count()} cores ({cpu}), batch {a.batch_size}",
             "", "| run | docs | seconds (whole command) | docs/s | start-up (8 docs, whole command) | output |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['run']} | {r['documents']} | {r['seconds']} | {r['docs_per_s']} | {r['startup_seconds_8_docs']} s | "
                     f"{r['identical_to'] if r['identical_to'] in ('DIFFERS', '(reference)') else 'byte-identical to ' + r['identical_to']} |")
    rate = driver_write_rate(a.out / results[0]["file"])
    lines += ["", f"The driver's ordered writer alone (unpickling each prediction and writing its record): {rate:,.0f} docs/s."]
    (a.out / "ray_engine.md").write_text("\n".join(lines) + "\n")
    (a.out / "ray_engine.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
