"""Two exports of a PL-Marker entity model, span graph against span graph: the graph's inputs captured from serving
real documents through the first export, then both graphs' ONNX Runtime sessions (1 thread) run on them round-robin,
the largest logit difference between them, and each graph's time by ONNX Runtime op type (its profiler).

    python benchmarks/span_graph_profile.py PREVIOUS_EXPORT NEW_EXPORT [--docs '../shared/data/docred/test.json[0:40]']
"""
from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch

from docunet.readers import load_documents
from docunet.runtime import Runtime
from docunet.text import document_from_text


def session(path: str, profile_prefix: str | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if profile_prefix:
        so.enable_profiling, so.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run_all(s: ort.InferenceSession, calls: list[list[np.ndarray]]) -> list[np.ndarray]:
    names = [i.name for i in s.get_inputs()]
    return [s.run(None, dict(zip(names, args)))[0] for args in calls]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exports", nargs=2)
    p.add_argument("--docs", default="../shared/data/docred/test.json[0:40]")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    rt = Runtime.load(a.exports[0], threads=1, workers=1)
    docs = [document_from_text(d.surface(), d.title) for d in load_documents(a.docs)]
    calls: list[list[np.ndarray]] = []
    spans = rt.backend.graphs["spans"]

    def capture(*args):
        calls.append([x.numpy() for x in args])
        return spans(*args)
    rt.backend.graphs["spans"] = capture
    list(rt.predict(docs, batch_size=8))
    sessions = [session(f"{d}/spans.onnx") for d in a.exports]
    outs = [run_all(s, calls) for s in sessions]
    print(f"{len(calls)} span-graph calls; max |logit diff| between the two exports: "
          f"{max(float(np.abs(x - y).max()) for x, y in zip(*outs)):.4f}")
    total = collections.defaultdict(float)
    for _ in range(a.rounds):
        for d, s in zip(a.exports, sessions):
            t0 = time.perf_counter()
            run_all(s, calls)
            total[d] += time.perf_counter() - t0
    print(f"seconds over {a.rounds} rounds: " + ", ".join(f"{d}: {t:.2f}" for d, t in total.items())
          + f"; first / second: {total[a.exports[0]] / total[a.exports[1]]:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        for d in a.exports:
            s = session(f"{d}/spans.onnx", f"{tmp}/profile")
            run_all(s, calls)
            by_op = collections.Counter()
            for e in json.load(open(s.end_profiling())):
                if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                    by_op[e["args"]["op_name"]] += e["dur"]
            t = sum(by_op.values())
            print(d, ", ".join(f"{op} {100 * v / t:.1f}%" for op, v in by_op.most_common(12)))


if __name__ == "__main__":
    main()
