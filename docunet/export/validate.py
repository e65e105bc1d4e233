"""Parity of exported graphs with the PyTorch model: scores, decoded predictions, optional F1.

Both sides run through the one inference core (`inference.iter_batches`) with the family's forward
pass on the same batches, so the only difference is what executes the graphs. Reported per run:
the max absolute score difference (the logits of every document's real entity block, for DocuNet),
the agreement of the decoded predictions (per scored unit, per unit and label, and over the
predicted facts), and, with labelled evaluation data, the family's score (F1, Ign F1) of both
models. An fp32 export fails when a score differs by more than the tolerance (1e-3) or when any
decoded prediction differs. The parity documents come from the family's export spec.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..inference import iter_batches
from ..models.base import ModelFamily, ParityOutputs

FP32_TOLERANCE = 1e-3


class ParityError(RuntimeError):
    """An fp32 graph whose outputs differ from the PyTorch model's beyond the tolerance."""


@dataclass
class BackendRun:
    outputs: list[ParityOutputs]
    seconds: float


def run_backend(family: ModelFamily, featurizer: Any, config: Any, graphs: Mapping[str, Callable], features: Sequence[Any],
                batch_size: int = 4, progress: Callable[[int], None] | None = None) -> BackendRun:
    """Parity outputs for every document (input order) with the given graph callables."""
    out: list[ParityOutputs | None] = [None] * len(features)
    t0 = time.perf_counter()
    for idx, batch, raw in iter_batches(family, featurizer, config, graphs, features, batch_size):
        for i, o in zip(idx, family.parity_outputs(batch, raw, [features[i] for i in idx], config)):
            out[i] = o
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


def compare(reference: list[ParityOutputs], exported: list[ParityOutputs], titles: list[str]) -> Comparison:
    max_diff, sum_diff, cells = 0.0, 0.0, 0
    pairs_equal = pairs = labels_equal = labels = 0
    ref_facts, exp_facts = set(), set()
    for title, a, b in zip(titles, reference, exported):
        if a.scores.numel():
            d = (a.scores - b.scores).abs()
            max_diff = max(max_diff, float(d.max()))
            sum_diff += float(d.sum())
            cells += d.numel()
        if a.decisions.numel():
            pairs += a.decisions.shape[0]
            pairs_equal += int((a.decisions == b.decisions).all(-1).sum())
            labels += a.decisions[:, 1:].numel()
            labels_equal += int((a.decisions[:, 1:] == b.decisions[:, 1:]).sum())
        ref_facts |= {(title, *f) for f in a.facts}
        exp_facts |= {(title, *f) for f in b.facts}
    only_ref, only_exp = ref_facts - exp_facts, exp_facts - ref_facts
    union = ref_facts | exp_facts
    examples = [f"only in PyTorch: {f}" for f in sorted(only_ref)[:3]] + [f"only in export: {f}" for f in sorted(only_exp)[:3]]
    return Comparison(
        documents=len(reference), max_abs_logit_diff=max_diff, mean_abs_logit_diff=sum_diff / max(1, cells),
        scored_pairs=pairs, pair_agreement=pairs_equal / pairs if pairs else 1.0,
        label_agreement=labels_equal / labels if labels else 1.0, facts_reference=len(ref_facts),
        facts_exported=len(exp_facts), facts_only_reference=len(only_ref), facts_only_exported=len(only_exp),
        fact_agreement=len(ref_facts & exp_facts) / len(union) if union else 1.0, differing_examples=examples)


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


class Validator:
    """Runs the PyTorch reference once (lazily) and compares any number of exported graph sets to it.

    The parity documents are the synthetic ones (`synthetic_documents`) plus `sample_docs`; the
    evaluation documents, when given, add agreement and F1 on labelled data.
    """

    def __init__(self, family: ModelFamily, model, featurizer: Any, sample_docs: Sequence[Any] | None = None,
                 eval_docs: Sequence[Any] | None = None, facts: set | None = None, batch_size: int = 4,
                 progress: Callable[[str, int, int], None] | None = None):
        self.family, self.model, self.featurizer = family, model, featurizer
        self.spec = family.export_spec()
        self.docs = self.spec.parity_documents(featurizer) + list(sample_docs or [])
        self.features = family.featurize(featurizer, self.docs)
        self.eval_docs = list(eval_docs) if eval_docs else []
        self.eval_features = family.featurize(featurizer, self.eval_docs) if self.eval_docs else []
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

    def _run(self, graphs: Mapping[str, Callable], features, stage: str) -> BackendRun:
        return run_backend(self.family, self.featurizer, self.model.config, graphs, features, self.batch_size,
                           self._tick(stage, len(features)))

    def reference(self) -> BackendRun:
        if self._ref is None:
            self._ref = self._run(self.family.graphs(self.model), self.features, "PyTorch on samples")
        return self._ref

    def reference_eval(self) -> BackendRun:
        if self._ref_eval is None:
            self._ref_eval = self._run(self.family.graphs(self.model), self.eval_features, "PyTorch on eval data")
        return self._ref_eval

    def score(self, outputs: list[ParityOutputs]) -> dict:
        return self.family.score(self.model.config, self.eval_docs, [o.predictions for o in outputs], self.facts).as_dict()

    def check(self, graphs: Mapping[str, Callable], precision: str, tolerance: float = FP32_TOLERANCE,
              with_eval: bool = True) -> ValidationReport:
        """Compare; for fp32 every logit difference beyond `tolerance` and every differing relation is a failure."""
        ref = self.reference()
        exp = self._run(graphs, self.features, f"{precision} graphs on samples")
        cmp = compare(ref.outputs, exp.outputs, [d.title for d in self.docs])
        strict = precision == "fp32"
        report = ValidationReport(precision, tolerance if strict else None, asdict(cmp),
                                  self.spec.describe_documents(self.featurizer, self.docs, self.features),
                                  seconds={"pytorch_samples": round(ref.seconds, 3), "exported_samples": round(exp.seconds, 3)})
        checks = [("the sample documents", cmp)]
        if with_eval and self.eval_docs:
            ref_e = self.reference_eval()
            exp_e = self._run(graphs, self.eval_features, f"{precision} graphs on eval data")
            cmp_e = compare(ref_e.outputs, exp_e.outputs, [f"eval:{i}:{d.title}" for i, d in enumerate(self.eval_docs)])
            report.eval = {"documents": len(self.eval_docs), **asdict(cmp_e),
                           "pytorch": self.score(ref_e.outputs), "exported": self.score(exp_e.outputs)}
            report.seconds.update(pytorch_eval=round(ref_e.seconds, 3), exported_eval=round(exp_e.seconds, 3))
            checks.append(("the evaluation data", cmp_e))
        if strict:
            for where, c in checks:
                if not c.max_abs_logit_diff <= tolerance:
                    report.failures.append(f"max |logit difference| {c.max_abs_logit_diff:.3g} > {tolerance:g} on {where}")
                if not c.relations_identical:
                    report.failures.append(f"decoded relations differ on {where}: {'; '.join(c.differing_examples)}")
        return report
