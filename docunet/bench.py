"""Side-by-side speed of backends on the same documents: docs/s, tokens/s, batch-1 latency, time per
stage, peak memory, optional F1, and the ratio to the reference (torch fp32 with eager attention
returning every layer's probabilities, the way the original code runs).

Each backend runs in its own subprocess (`python -m docunet.bench --one SPEC`), so peak memory and
thread settings of one cannot leak into another.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .artifacts import MANIFEST_FILE, export_label
from .engines.cpu import cpu_info
from .metrics import train_facts as facts_of
from .readers import load_documents
from .runtime import Runtime
from .runtime.backends import served_int8_bits
from .timing import StageTimer

REFERENCE = "torch-eager"


@dataclass
class Spec:
    """A backend to measure: `torch-eager`, `torch`, `torch-bf16`, `torch-auto` (bf16 with AMX, else fp32),
    `onnxruntime@DIR` (an export dir); a `+fitK` suffix runs it with the runtime's `grid_fit=K` (e.g.
    `onnxruntime@exports/int8+fit8`), a `+wK` suffix with `workers=K` (K batches at once, cores // K
    threads each), `+weights=as-exported|w7|auto` picks an int8 export's weights (default auto: those
    that fit this CPU). ONNX Runtime names carry the width served (`-w8`, `-w7`, `-w7from8`). Entity models:
    `+pruneR` serves with candidate pruning ratio R, `+dense` with the original's dense packed pass (torch)."""

    name: str
    backend: str
    model_dir: str
    precision: str = "fp32"
    attention: str = "sdpa"
    grid_fit: int = 0
    workers: int = 1
    int8_weights: str = "auto"
    settings: dict = field(default_factory=dict)  # serve-time model settings (Runtime settings=)

    @classmethod
    def parse(cls, text: str, checkpoint: str) -> "Spec":
        weights = re.search(r"\+weights=([\w-]+)", text)
        if weights:
            spec = cls.parse(text[: weights.start()] + text[weights.end():], checkpoint)
            if spec.backend != "onnxruntime":
                raise ValueError(f"{text}: +weights= applies to onnxruntime@EXPORT_DIR backends")
            return dataclasses.replace(spec, int8_weights=weights.group(1),
                                       name=_ort_name(spec.model_dir, weights.group(1)) + spec.name[len(spec.name.split("+")[0]):])
        setting = re.search(r"\+(prune)(\d*\.?\d+)$|\+(dense)$", text)
        if setting:  # entity models: +pruneR serves with prune_ratio R, +dense the original's dense packed pass
            spec = cls.parse(text[: setting.start()], checkpoint)
            value = {"prune_ratio": float(setting.group(2))} if setting.group(1) else {"dense_pass": True}
            return dataclasses.replace(spec, name=spec.name + setting.group(0), settings={**spec.settings, **value})
        suffix = re.search(r"\+(fit|w)(\d+)$", text)
        if suffix:
            spec = cls.parse(text[: suffix.start()], checkpoint)
            field = {"fit": "grid_fit", "w": "workers"}[suffix.group(1)]
            return dataclasses.replace(spec, name=spec.name + suffix.group(0), **{field: int(suffix.group(2))})
        if text.startswith("onnxruntime@"):
            path = text.split("@", 1)[1]
            return cls(_ort_name(path, "auto"), "onnxruntime", path)
        table = {"torch-eager": ("torch", "fp32", "eager"), "torch": ("torch", "fp32", "sdpa"),
                 "torch-bf16": ("torch", "bf16", "sdpa"), "torch-fp16": ("torch", "fp16", "sdpa"), "torch-auto": ("torch", "auto", "sdpa")}
        if text not in table:
            raise ValueError(f"unknown backend {text!r}: use {', '.join(table)} or onnxruntime@EXPORT_DIR")
        b, p, a = table[text]
        if p == "auto":  # named by what it resolves to here: torch-auto-bf16 or torch-auto-fp32
            text += "-bf16" if cpu_info().bf16 else "-fp32"
        return cls(text, b, checkpoint, p, a)


def _ort_name(export_dir: str, int8_weights: str) -> str:
    """What the onnxruntime backend will call this export on this CPU (the int8 weight width it serves)."""
    manifest = json.loads((Path(export_dir) / MANIFEST_FILE).read_text())
    return f"onnxruntime-{export_label(manifest, served_int8_bits(manifest, cpu_info(), int8_weights=int8_weights))}"


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def measure_one(spec: Spec, docs_path: str, n_docs: int, batch_sizes: list[int], device: str, threads: int,
                eval_data: str | None, train_facts: str | None, soak: int) -> dict:
    """Run in the subprocess: every batch size on the same documents."""
    if threads:
        torch.set_num_threads(threads)
    docs = load_documents(docs_path)[:n_docs]
    rt = Runtime.load(spec.model_dir, backend=spec.backend, device=device, precision=spec.precision,
                      threads=threads or None, attention=spec.attention, grid_fit=spec.grid_fit or None,
                      workers=spec.workers, int8_weights=spec.int8_weights, settings=spec.settings or None)
    sync = rt.backend.sync
    if spec.backend == "onnxruntime":  # named by what it runs (weights that could not be requantized keep their width)
        spec = dataclasses.replace(spec, name=rt.name + spec.name[len(spec.name.split("+")[0]):])
    list(rt.predict(docs[:8], batch_size=max(batch_sizes)))  # warm-up
    t0 = time.perf_counter()
    features = rt.family.featurize(rt.featurizer, docs)
    featurize_s = time.perf_counter() - t0
    tokens = sum(f.length for f in features)
    result = {"name": spec.name, "output": rt.family.output, "device": device, "threads": threads or torch.get_num_threads(), "docs": len(docs),
              "tokens": tokens, "featurize_seconds": featurize_s, "runs": []}
    for bs in batch_sizes:
        timer = StageTimer(sync)
        t_start = time.perf_counter()
        n = sum(1 for _ in rt.predict(docs, batch_size=bs, timer=timer))
        wall = time.perf_counter() - t_start
        stages = dict(timer.seconds)
        host = featurize_s + stages.get("collate", 0) + stages.get("merge_pool", 0) + stages.get("decode", 0)
        run = {"batch_size": bs, "seconds": wall, "docs_per_s": n / wall, "tokens_per_s": tokens / wall,
               "stages": stages, "host_share": host / wall}
        if bs == 1:  # request latency: one document per call, nothing pipelined
            latencies = []
            for d in docs:
                t0 = time.perf_counter()
                list(rt.predict([d], batch_size=1))
                latencies.append(time.perf_counter() - t0)
            lat = np.asarray(latencies) * 1000
            run.update(latency_ms_p50=float(np.percentile(lat, 50)), latency_ms_p90=float(np.percentile(lat, 90)),
                       latency_ms_p99=float(np.percentile(lat, 99)))
        result["runs"].append(run)
    if eval_data:  # the family's own score (DocRED scores, or binary scores for CDR/GDA-style data)
        gold = load_documents(eval_data, getattr(rt.config, "relations", None))
        facts = facts_of(load_documents(train_facts)) if train_facts else None
        preds = [getattr(p, rt.family.output) for p in rt.predict(gold, batch_size=8)]
        result["eval"] = rt.family.score(rt.config, gold, preds, facts).as_dict()
    if soak:
        rss = []
        stream = (docs[i % len(docs)] for i in range(soak))
        for i, _ in enumerate(rt.predict(stream, batch_size=8), start=1):
            if i % max(1, soak // 10) == 0:
                with open("/proc/self/status") as fh:
                    cur = next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1e6
                rss.append({"docs": i, "rss_gb": cur})
        result["soak"] = rss
    result["peak_memory_gb"] = _rss_gb()
    return result


def run_all(checkpoint: str, specs: list[str], docs: str, n_docs: int, batch_sizes: list[int], device: str, threads: int,
            out_dir: Path, eval_data: str | None = None, train_facts: str | None = None, soak: int = 0, soak_backend: str | None = None,
            log=print, rounds: int = 1) -> dict:
    """Measure every backend (one subprocess each), `rounds` times round-robin; F1 and the soak in round 1 only.

    With several rounds, every backend meets the same phases of a noisy shared machine, and each
    batch size reports the round with the median docs/s (`combine_rounds`)."""
    parsed = [Spec.parse(s, checkpoint) for s in specs]
    per_spec: list[list[dict]] = [[] for _ in parsed]
    for rnd in range(rounds):
        for i, spec in enumerate(parsed):
            if per_spec[i] and "error" in per_spec[i][0]:
                continue
            first = rnd == 0
            cmd = [sys.executable, "-m", "docunet.bench", "--one", json.dumps(spec.__dict__), "--docs", docs, "--n-docs", str(n_docs),
                   "--batch-sizes", ",".join(map(str, batch_sizes)), "--device", device, "--threads", str(threads),
                   "--soak", str(soak if first and spec.name == (soak_backend or "") else 0)]
            if eval_data and first:
                cmd += ["--eval-data", eval_data] + (["--train-facts", train_facts] if train_facts else [])
            log(f"measuring {spec.name} ..." + (f" (round {rnd + 1}/{rounds})" if rounds > 1 else ""))
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode != 0:
                log(f"{spec.name} failed:\n{proc.stderr[-2000:]}")
                per_spec[i] = [{"name": spec.name, "error": proc.stderr[-2000:]}]
                continue
            per_spec[i].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results = [combine_rounds(rs) for rs in per_spec]
    report = {"checkpoint": checkpoint, "docs": docs, "n_docs": n_docs, "device": device, "cpu": cpu_info().describe(), "threads": threads,
              "reference": REFERENCE, "rounds": rounds, "results": results}
    add_ratios(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "bench.md").write_text(markdown_table(report))
    try:
        plot(report, out_dir / "bench.png")
    except ImportError:
        log("matplotlib is not installed: no chart (pip install 'docunet[bench]')")
    return report


def combine_rounds(rounds: list[dict]) -> dict:
    """One result from a backend's rounds: per batch size the run with the median docs/s (the lower
    middle for an even count), with every round's docs/s kept in `docs_per_s_rounds`."""
    if len(rounds) == 1 or "error" in rounds[0]:
        return rounds[0]
    out = dict(rounds[0])
    out["runs"] = []
    for j, _ in enumerate(rounds[0]["runs"]):
        runs = sorted((r["runs"][j] for r in rounds), key=lambda run: run["docs_per_s"])
        chosen = dict(runs[(len(runs) - 1) // 2])
        chosen["docs_per_s_rounds"] = [r["runs"][j]["docs_per_s"] for r in rounds]
        out["runs"].append(chosen)
    out["peak_memory_gb"] = max(r["peak_memory_gb"] for r in rounds)
    return out


def add_ratios(report: dict) -> None:
    """Ratios over `torch-eager` when it was measured, else over the first backend listed (report["reference"])."""
    measured = [r for r in report["results"] if "runs" in r]
    ref = next((r for r in measured if r.get("name") == REFERENCE), measured[0] if measured else None)
    if ref is None:
        return
    report["reference"] = ref["name"]
    base = {run["batch_size"]: run["docs_per_s"] for run in ref["runs"]}
    for r in report["results"]:
        for run in r.get("runs", []):
            if run["batch_size"] in base:
                run["ratio_to_reference"] = run["docs_per_s"] / base[run["batch_size"]]


def markdown_table(report: dict) -> str:
    rounds = report.get("rounds", 1)
    lines = [f"docs: {report['docs']} (first {report['n_docs']}), device {report['device']}, CPU {report.get('cpu', 'not recorded')}, "
             f"threads {report['threads']}; "
             + (f"ratio = docs/s over `{REFERENCE}` (torch fp32, eager attention with every layer's probabilities) at the same batch size"
              if report.get("reference", REFERENCE) == REFERENCE else f"ratio = docs/s over `{report['reference']}` at the same batch size")
             + (f"; {rounds} rounds round-robin, each cell from the round with the median docs/s (range of the rounds in brackets)"
                if rounds > 1 else ""),
             "", "| backend | batch | docs/s | tokens/s | ratio | p50 / p90 / p99 ms (batch 1) | encoder | head | host share | peak GB | "
             + ("dev mention F1 (typed) | untyped |" if all(r.get("output") == "mentions" for r in report["results"] if "runs" in r)
                else "dev F1 | dev Ign F1 |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        if "runs" not in r:
            lines.append(f"| {r['name']} | failed | | | | | | | | | | |")
            continue
        ev = r.get("eval", {})
        for run in r["runs"]:
            lat = (f"{run['latency_ms_p50']:.0f} / {run['latency_ms_p90']:.0f} / {run['latency_ms_p99']:.0f}" if "latency_ms_p50" in run else "")
            st = run["stages"]
            spread = run.get("docs_per_s_rounds")
            dps = f"{run['docs_per_s']:.2f}" + (f" ({min(spread):.2f}-{max(spread):.2f})" if spread else "")
            f1 = f"{100 * ev['f1']:.2f} | {100 * ev['ign_f1']:.2f}" if ev else " | "
            lines.append(
                f"| {r['name']} | {run['batch_size']} | {dps} | {run['tokens_per_s']:.0f} | "
                f"{run.get('ratio_to_reference', float('nan')):.2f} | {lat} | {st.get('encoder', 0) / run['seconds']:.0%} | "
                f"{st.get('head', 0) / run['seconds']:.0%} | {run['host_share']:.0%} | {r['peak_memory_gb']:.2f} | {f1} |")
    if any("from8" in r["name"] for r in report["results"]):
        lines += ["", "-w7from8: the export's 8-bit int8 weights, requantized to 7 bits when the runtime loads them"]
    for r in report["results"]:
        if r.get("soak"):
            lines += ["", f"memory over {r['soak'][-1]['docs']} documents ({r['name']}, batch 8): " +
                      ", ".join(f"{s['docs']}: {s['rss_gb']:.2f} GB" for s in r["soak"])]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report["results"] if "runs" in r]
    sizes = sorted({run["batch_size"] for r in ok for run in r["runs"]})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(ok))
    for i, r in enumerate(ok):
        by = {run["batch_size"]: run["docs_per_s"] for run in r["runs"]}
        ax.bar([s + i * width for s in range(len(sizes))], [by.get(b, 0) for b in sizes], width, label=r["name"])
    ax.set_xticks([s + width * (len(ok) - 1) / 2 for s in range(len(sizes))], [f"batch {b}" for b in sizes])
    ax.set_ylabel("documents / second")
    ax.set_title(f"docunet-bench: {Path(report['docs']).name}, {report['device']}, {report['threads'] or 'all'} threads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _main_one(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--one", required=True)
    p.add_argument("--docs", required=True)
    p.add_argument("--n-docs", type=int, default=200)
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--eval-data")
    p.add_argument("--train-facts")
    p.add_argument("--soak", type=int, default=0)
    a = p.parse_args(argv)
    spec = Spec(**json.loads(a.one))
    res = measure_one(spec, a.docs, a.n_docs, [int(x) for x in a.batch_sizes.split(",")], a.device, a.threads,
                      a.eval_data, a.train_facts, a.soak)
    print(json.dumps(res))


if __name__ == "__main__":
    _main_one(sys.argv[1:])
