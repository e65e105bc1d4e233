"""Parity of exported graphs with the PyTorch model: logits, decoded relations, optional F1.

Both sides run through `docunet.modeling.run_docunet` on the same batches, so the only difference
is the encoder/head implementation. Reported per run: the max absolute logit difference over the
real entity block of every document, the agreement of the decoded relations (per scored pair, per
pair and label, and over the predicted facts), and, with labelled evaluation data, the F1 (and Ign
F1) of both models. An fp32 export fails when the logits differ by more than the tolerance
(1e-3) or when any decoded relation differs.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from ..documents import Document, Mention
from ..featurize import DocFeatures, Featurizer, collate_features
from ..losses import decode
from ..metrics import binary_scores, docred_scores
from ..modeling import run_docunet
from ..predict import PredictedRelation, iter_facts, length_sorted_batches, relations_from_logits

FP32_TOLERANCE = 1e-3


class ParityError(RuntimeError):
    """An fp32 graph whose outputs differ from the PyTorch model's beyond the tolerance."""


@dataclass
class DocOutputs:
    logits: torch.Tensor  # [E, E, R] float32, the real entity block
    decisions: torch.Tensor  # [P, R] bool, decoded labels of the scored pairs (column 0 = no relation)
    relations: list[PredictedRelation]


@dataclass
class BackendRun:
    outputs: list[DocOutputs]
    seconds: float


@torch.inference_mode()
def run_backend(encoder: Callable, head: Callable, featurizer: Featurizer, features: list[DocFeatures],
                batch_size: int = 4, progress: Callable[[int], None] | None = None) -> BackendRun:
    """Logits and decoded relations for every document (input order) with the given encoder/head callables."""
    cfg = featurizer.config
    out: list[DocOutputs | None] = [None] * len(features)
    t0 = time.perf_counter()
    for idx in length_sorted_batches(features, batch_size):
        batch = collate_features(featurizer, [features[i] for i in idx])
        for docs, logits in run_docunet(batch, encoder, head, cfg):
            logits = logits.float().cpu()
            rels = relations_from_logits(logits, batch.pair_mask[docs], cfg.relations, cfg.loss, cfg.threshold, cfg.top_k)
            for local, lg, rel in zip(docs.tolist(), logits, rels):
                f = features[idx[local]]
                e = f.num_entities
                block = lg[:e, :e].clone()
                pairs = torch.from_numpy(f.pairs)
                dec = decode(block[pairs[:, 0], pairs[:, 1]], cfg.loss, cfg.threshold, cfg.top_k) if len(pairs) else \
                    torch.zeros(0, block.shape[-1], dtype=torch.bool)
                out[idx[local]] = DocOutputs(block, dec, rel)
        if progress:
            progress(len(idx))
    return BackendRun(out, time.perf_counter() - t0)  # type: ignore[arg-type]


@dataclass
class Comparison:
    documents: int
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    scored_pairs: int
    pair_agreement: float  # scored pairs whose decoded label sets are identical
    label_agreement: float  # (scored pair, label) decisions that are identical
    facts_reference: int
    facts_exported: int
    facts_only_reference: int
    facts_only_exported: int
    fact_agreement: float  # |A & B| / |A | B| over predicted facts (1.0 when both are empty)
    differing_examples: list[str] = field(default_factory=list)

    @property
    def relations_identical(self) -> bool:
        return self.facts_only_reference == 0 and self.facts_only_exported == 0 and self.pair_agreement == 1.0


def compare(reference: list[DocOutputs], exported: list[DocOutputs], titles: list[str]) -> Comparison:
    max_diff, sum_diff, cells = 0.0, 0.0, 0
    pairs_equal = pairs = labels_equal = labels = 0
    ref_facts, exp_facts = set(), set()
    for title, a, b in zip(titles, reference, exported):
        if a.logits.numel():
            d = (a.logits - b.logits).abs()
            max_diff = max(max_diff, float(d.max()))
            sum_diff += float(d.sum())
            cells += d.numel()
        if a.decisions.numel():
            pairs += a.decisions.shape[0]
            pairs_equal += int((a.decisions == b.decisions).all(-1).sum())
            labels += a.decisions[:, 1:].numel()
            labels_equal += int((a.decisions[:, 1:] == b.decisions[:, 1:]).sum())
        ref_facts |= {(title, r.head, r.tail, r.label) for r in a.relations}
        exp_facts |= {(title, r.head, r.tail, r.label) for r in b.relations}
    only_ref, only_exp = ref_facts - exp_facts, exp_facts - ref_facts
    union = ref_facts | exp_facts
    examples = [f"only in PyTorch: {f}" for f in sorted(only_ref)[:3]] + [f"only in export: {f}" for f in sorted(only_exp)[:3]]
    return Comparison(
        documents=len(reference), max_abs_logit_diff=max_diff, mean_abs_logit_diff=sum_diff / max(1, cells),
        scored_pairs=pairs, pair_agreement=pairs_equal / pairs if pairs else 1.0,
        label_agreement=labels_equal / labels if labels else 1.0, facts_reference=len(ref_facts),
        facts_exported=len(exp_facts), facts_only_reference=len(only_ref), facts_only_exported=len(only_exp),
        fact_agreement=len(ref_facts & exp_facts) / len(union) if union else 1.0, differing_examples=examples)


def score(docs: list[Document], outputs: list[DocOutputs], facts: set | None) -> dict:
    preds = [o.relations for o in outputs]
    binary = any(d.candidate_pairs is not None for d in docs)
    s = binary_scores(iter_facts(docs, preds), docs) if binary else docred_scores(iter_facts(docs, preds), docs, facts)
    return s.as_dict()


# ----------------------------------------------------------------------------------------------
# Sample documents: a >max_window document, a full grid, and one grid bucket larger
# ----------------------------------------------------------------------------------------------
def _plain_words(tokenizer, n: int = 400) -> list[str]:
    vocab = tokenizer.get_vocab()
    words = sorted((w for w in vocab if w.isascii() and w.isalpha() and w.islower() and len(w) >= 3), key=vocab.get)
    return words[:n] or ["word"]


def synthetic_documents(featurizer: Featurizer, seed: int = 0) -> list[Document]:
    """Documents the export must handle: a document longer than one encoder window (several windows,
    mentions in each), one with exactly `grid_size` entities (the full grid) and one with more
    (the next grid size). Entities get several mentions and every configured entity type."""
    cfg = featurizer.config
    rng = random.Random(seed)
    words = _plain_words(featurizer.tokenizer)
    types = list(cfg.entity_types) or ["MISC"]

    def doc(title: str, n_entities: int, target_tokens: int) -> Document:
        sents: list[list[str]] = []
        entities: list[list[Mention]] = [[] for _ in range(n_entities)]
        n_sents = max(n_entities, 1)
        per_sent = max(4, target_tokens // n_sents)
        for s in range(n_sents):
            sent = [rng.choice(words) for _ in range(per_sent)]
            sents.append(sent + ["."])
            e = s % n_entities
            etype = types[e % len(types)]
            entities[e].append(Mention(s, 0, 1, etype, sent[0]))
            if rng.random() < 0.3 and per_sent > 4:  # a second mention of another entity
                other = rng.randrange(n_entities)
                entities[other].append(Mention(s, 2, 4, types[other % len(types)], " ".join(sent[2:4])))
        return Document(title, sents, [sorted(set(m), key=lambda x: (x.sent_id, x.start)) for m in entities], None,
                        source=f"synthetic:{title}")

    long_doc = doc("synthetic-long", 12, int(cfg.max_window * 1.8))
    full = doc("synthetic-full-grid", cfg.grid_size, 3 * cfg.grid_size)
    larger = doc("synthetic-larger-grid", cfg.grid_size + 1, 3 * (cfg.grid_size + 1))
    short = doc("synthetic-short", 3, 20)
    return [long_doc, full, larger, short]


# ----------------------------------------------------------------------------------------------
# The validation every export runs
# ----------------------------------------------------------------------------------------------
@dataclass
class ValidationReport:
    precision: str
    tolerance: float | None
    samples: dict  # Comparison as a dict, on the sample documents
    sample_documents: dict  # title -> (tokens, entities, windows, grid)
    eval: dict | None = None  # Comparison on the evaluation data, plus F1 of both models
    failures: list[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    base_fp32: dict | None = None  # fp16/int8: the fp32 graphs' sample comparison they were derived from

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def describe_documents(featurizer: Featurizer, docs: list[Document], features: list[DocFeatures]) -> dict:
    from ..batching import plan_windows

    cfg = featurizer.config
    out = {}
    for d, f in zip(docs, features):
        n_windows = len(plan_windows(f.length, cfg.max_window, cfg.window_overlap, len(featurizer.prefix), len(featurizer.suffix)))
        out[d.title] = {"tokens": f.length, "entities": f.num_entities, "windows": n_windows, "grid": cfg.grid_for(f.num_entities)}
    return out


class Validator:
    """Runs the PyTorch reference once (lazily) and compares any number of exported encoder/head pairs to it.

    The parity documents are the synthetic ones (`synthetic_documents`) plus `sample_docs`; the
    evaluation documents, when given, add agreement and F1 on labelled data.
    """

    def __init__(self, model, featurizer: Featurizer, sample_docs: list[Document] | None = None,
                 eval_docs: list[Document] | None = None, facts: set | None = None, batch_size: int = 4,
                 progress: Callable[[str, int, int], None] | None = None):
        self.model, self.featurizer = model, featurizer
        self.docs = synthetic_documents(featurizer) + list(sample_docs or [])
        self.features = featurizer(self.docs)
        self.eval_docs = list(eval_docs) if eval_docs else []
        self.eval_features = featurizer(self.eval_docs) if self.eval_docs else []
        self.facts, self.batch_size, self.progress = facts, batch_size, progress
        self._ref: BackendRun | None = None
        self._ref_eval: BackendRun | None = None

    def _tick(self, stage: str, total: int):
        if not self.progress:
            return None
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            self.progress(stage, done[0], total)
        return tick

    def _run(self, encoder, head, features, stage: str) -> BackendRun:
        return run_backend(encoder, head, self.featurizer, features, self.batch_size, self._tick(stage, len(features)))

    def reference(self) -> BackendRun:
        if self._ref is None:
            self._ref = self._run(self.model.encoder, self.model.head, self.features, "PyTorch on samples")
        return self._ref

    def reference_eval(self) -> BackendRun:
        if self._ref_eval is None:
            self._ref_eval = self._run(self.model.encoder, self.model.head, self.eval_features, "PyTorch on eval data")
        return self._ref_eval

    def check(self, encoder: Callable, head: Callable, precision: str, tolerance: float = FP32_TOLERANCE,
              with_eval: bool = True) -> ValidationReport:
        """Compare; for fp32 every logit difference beyond `tolerance` and every differing relation is a failure."""
        ref = self.reference()
        exp = self._run(encoder, head, self.features, f"{precision} graphs on samples")
        cmp = compare(ref.outputs, exp.outputs, [d.title for d in self.docs])
        strict = precision == "fp32"
        report = ValidationReport(precision, tolerance if strict else None, asdict(cmp),
                                  describe_documents(self.featurizer, self.docs, self.features),
                                  seconds={"pytorch_samples": round(ref.seconds, 3), "exported_samples": round(exp.seconds, 3)})
        checks = [("the sample documents", cmp)]
        if with_eval and self.eval_docs:
            ref_e = self.reference_eval()
            exp_e = self._run(encoder, head, self.eval_features, f"{precision} graphs on eval data")
            cmp_e = compare(ref_e.outputs, exp_e.outputs, [f"eval:{i}:{d.title}" for i, d in enumerate(self.eval_docs)])
            report.eval = {"documents": len(self.eval_docs), **asdict(cmp_e),
                           "pytorch": score(self.eval_docs, ref_e.outputs, self.facts),
                           "exported": score(self.eval_docs, exp_e.outputs, self.facts)}
            report.seconds.update(pytorch_eval=round(ref_e.seconds, 3), exported_eval=round(exp_e.seconds, 3))
            checks.append(("the evaluation data", cmp_e))
        if strict:
            for where, c in checks:
                if not c.max_abs_logit_diff <= tolerance:
                    report.failures.append(f"max |logit difference| {c.max_abs_logit_diff:.3g} > {tolerance:g} on {where}")
                if not c.relations_identical:
                    report.failures.append(f"decoded relations differ on {where}: {'; '.join(c.differing_examples)}")
        return report


def validate_export(model, featurizer: Featurizer, encoder: Callable, head: Callable, precision: str,
                    sample_docs: list[Document] | None = None, eval_docs: list[Document] | None = None,
                    facts: set | None = None, batch_size: int = 4, tolerance: float = FP32_TOLERANCE) -> ValidationReport:
    """One-shot `Validator(...).check(...)`."""
    return Validator(model, featurizer, sample_docs, eval_docs, facts, batch_size).check(encoder, head, precision, tolerance)
