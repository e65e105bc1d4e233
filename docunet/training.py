"""The training loop of every model family: AdamW with the family's parameter groups, linear
warmup/decay, gradient clipping, dev-set model selection with the family's score.

Every epoch appends one JSON line (loss, dev P/R/F1/Ign F1, seconds, peak memory) to
`train_log.jsonl` in the output directory; the best epoch on the dev set is saved as a checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .artifacts import CONFIG_FILE
from .checkpoint import load_checkpoint, save_checkpoint
from .documents import Document
from .inference import predict_documents
from .metrics import Scores, train_facts
from .models import family_of


@dataclass
class TrainArgs:
    epochs: int = 10
    batch_size: int = 4
    eval_batch_size: int = 8
    lr_encoder: float = 3e-5
    lr_classifier: float = 1e-4  # DocuNet: extractors and bilinear
    lr_unet: float = 4e-4  # DocuNet: feature-map projection and U-Net
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    seed: int = 66
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)
    max_steps: int = 0  # stop early after this many optimizer steps (0: full schedule)
    stop_after: int = 0  # stop after this many epochs, the schedule still set for `epochs` (0: all)
    keep_last: bool = False  # keep the last epoch's checkpoint instead of the best dev F1 (no held-out dev)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def evaluate_docs(model: torch.nn.Module, featurizer, docs: list[Document], facts: set | None,
                  batch_size: int = 8, precision: str = "fp32") -> tuple[Scores, list]:
    """The family's score of the model's predictions on labelled documents, and the predictions."""
    preds = predict_documents(model, featurizer, docs, batch_size, autocast_dtype=autocast_dtype(precision))
    return family_of(model.config).score(model.config, docs, preds, facts), preds


def train(model: torch.nn.Module, featurizer, train_docs: list[Document], dev_docs: list[Document],
          args: TrainArgs, out_dir: Path, test_docs: list[Document] | None = None, progress: bool = True) -> dict:
    """Train, select on dev F1 (or keep the last epoch), save that checkpoint to out_dir; return the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)
    device = next(model.parameters()).device
    family = family_of(model.config)
    features = family.featurize(featurizer, train_docs)
    ratio = getattr(model.config, "train_negative_ratio", 1.0)
    features = family.training_units(features, ratio, args.seed) if ratio < 1.0 else family.training_units(features)
    facts = train_facts(train_docs)
    optimizer = torch.optim.AdamW(family.param_groups(model, args), eps=1e-6, weight_decay=0.0)
    steps_per_epoch = len(features) // args.batch_size // args.grad_accum
    total_steps = max(1, steps_per_epoch * args.epochs)
    warmup = int(total_steps * args.warmup_ratio)
    schedule = lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp = autocast_dtype(args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
    log_path = out_dir / "train_log.jsonl"
    log_path.write_text("")
    best, step, history = -1.0, 0, []
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = list(range(len(features)))
        random.shuffle(order)
        batches = [order[i : i + args.batch_size] for i in range(0, len(order) - args.batch_size + 1, args.batch_size)]
        losses = []
        bar = tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", disable=not progress, dynamic_ncols=True)
        for i, idx in enumerate(bar):
            batch = family.collate(featurizer, [features[j] for j in idx]).to(device)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss, _ = family.loss(model, batch)
            scaler.scale(loss / args.grad_accum).backward()
            losses.append(loss.item())
            if (i + 1) % args.grad_accum == 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                if args.max_steps and step >= args.max_steps:
                    break
        train_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        scores, _ = evaluate_docs(model, featurizer, dev_docs, facts, args.eval_batch_size, args.precision)
        record = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)) if losses else math.nan,
                  **scores.as_dict("dev_"), "train_seconds": round(train_seconds, 1),
                  "seconds_per_step": round(train_seconds / max(1, len(losses) // args.grad_accum), 3),
                  "eval_seconds": round(time.perf_counter() - t1, 1), "peak_memory_gb": round(peak_memory_gb(device), 2)}
        history.append(record)
        with open(log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if progress:
            first, second = family_of(model.config).score_names
            tqdm.write(f"epoch {epoch}: loss {record['loss']:.4f} dev P {scores.precision:.4f} R {scores.recall:.4f} "
                       f"{first} {scores.f1:.4f} {second} {scores.ign_f1:.4f}")
        if scores.f1 > best or args.keep_last:
            best = scores.f1
            save_checkpoint(model, featurizer.tokenizer, out_dir)
        if (args.max_steps and step >= args.max_steps) or (args.stop_after and epoch >= args.stop_after):
            break
    summary = {"args": asdict(args), "best_dev_f1": best, "epochs": history}
    best_epoch = history[-1] if args.keep_last else max(history, key=lambda r: r["dev_f1"])
    summary["best_epoch"] = best_epoch
    best_model, best_feat = load_checkpoint(out_dir, device)
    updates = family.calibrate(best_model, best_feat, dev_docs)  # probability-like scores, fitted on dev
    if updates:
        best_model.config = dataclasses.replace(best_model.config, **updates)
        best_model.config.save(out_dir / CONFIG_FILE)
        summary["calibration"] = updates
    if test_docs:
        test_scores, _ = evaluate_docs(best_model, best_feat, test_docs, facts, args.eval_batch_size, args.precision)
        summary["test"] = test_scores.as_dict()
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
