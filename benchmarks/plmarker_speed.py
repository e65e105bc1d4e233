"""PL-Marker NER inference: the dense packed pass against text once + markers on cached keys and values.

    python benchmarks/plmarker_speed.py CHECKPOINT --docs '../shared/data/docred/test.json[0:50]' [--pairs 256 64]

Both paths run on the same batches (DocRED documents, 4 per batch, every candidate span) in one
process, alternating rounds; it reports documents/s, the ratio, and whether the predicted mentions are
identical. `--pairs` also tries smaller K (more instances per sentence: more to share).
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import torch

from docunet.checkpoint import load_checkpoint
from docunet.models import family_of
from docunet.readers import load_documents


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--docs", required=True)
    p.add_argument("--batch-docs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pairs", type=int, nargs="*", default=[])
    a = p.parse_args()
    model, featurizer = load_checkpoint(a.checkpoint)
    family = family_of(model.config)
    docs = load_documents(a.docs)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"{len(docs)} documents from {a.docs}; {torch.get_num_threads()} threads; {cpu}")
    print("| K | instances | tokens | dense docs/s | text-once docs/s | ratio | same mentions |\n|---|---|---|---|---|---|---|")
    for K in [model.config.max_pair_length] + a.pairs:
        model.config = dataclasses.replace(model.config, max_pair_length=K)
        featurizer.config = model.config
        features = family.featurize(featurizer, docs)
        batches = [family.collate(featurizer, features[i : i + a.batch_docs]) for i in range(0, len(features), a.batch_docs)]
        seconds = {False: 0.0, True: 0.0}
        outputs = {}
        with torch.inference_mode():
            for _ in range(a.rounds):
                for text_once in (False, True):
                    t0 = time.perf_counter()
                    outputs[text_once] = [family.decode(b, model(b, text_once=text_once), model.config) for b in batches]
                    seconds[text_once] += time.perf_counter() - t0
        def spans(out):
            return [[(s.sent_id, s.start, s.end, s.type) for s in doc] for batch in out for doc in batch]

        same = spans(outputs[False]) == spans(outputs[True])
        n = len(docs) * a.rounds
        tokens = sum(f.length for f in features)
        print(f"| {K} | {sum(len(f.instances) for f in features)} | {tokens} | {n / seconds[False]:.2f} | {n / seconds[True]:.2f} | "
              f"{seconds[False] / seconds[True]:.2f} | {same} |")


if __name__ == "__main__":
    main()
