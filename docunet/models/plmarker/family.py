"""PL-Marker span NER behind the model-family contract (models/base.py)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...documents import Document, PredictedSpan
from ...metrics import Scores, span_scores
from ...timing import NULL_TIMER
from ..base import ExportSpec, Graphs, ModelFamily, ParityOutputs
from .batching import SpanBatch, collate_spans
from .config import PLMarkerNERConfig
from .export_spec import EXPORT_SPEC
from .featurize import DocSpanFeatures, SpanFeaturizer, SpanInstance
from .modeling import MarkerEncoder, PLMarkerNER, text_once_states


def select_spans(candidates: list[tuple[float, int, int, int, int]], nested: bool) -> list[tuple[float, int, int, int, int]]:
    """Greedy decoding over (score, sentence, start, end, label), best first: a span is kept unless it
    overlaps a kept span (flat), or a kept span of the same label (nested, as the original on SciERC)."""
    kept: list[tuple[float, int, int, int, int]] = []
    for c in sorted(candidates, key=lambda x: -x[0]):
        _, s, a, b, label = c
        if any(s == k[1] and a < k[3] and k[2] < b and (not nested or label == k[4]) for k in kept):
            continue
        kept.append(c)
    return kept


class PLMarkerNERFamily(ModelFamily):
    model_type = "plmarker-ner"
    config_class = PLMarkerNERConfig
    output = "mentions"

    def build_model(self, config: PLMarkerNERConfig, transformer: nn.Module) -> PLMarkerNER:
        return PLMarkerNER(config, transformer)

    def make_featurizer(self, tokenizer, config: PLMarkerNERConfig) -> SpanFeaturizer:
        return SpanFeaturizer(tokenizer, config)

    def training_units(self, features: Sequence[DocSpanFeatures], ratio: float = 1.0, seed: int = 0) -> list[DocSpanFeatures]:
        """One packed instance each, as the original batches (8 instances, not 8 documents); with `ratio` < 1
        (config.train_negative_ratio) only that fraction of the non-entity spans is kept, every entity span is."""
        rng = np.random.default_rng(seed)
        units = []
        for f in features:
            for x in f.instances:
                if x.labels is None:
                    continue
                if ratio < 1.0:
                    keep = (x.labels > 0) | (rng.random(len(x.labels)) < ratio)
                    x = SpanInstance(x.input_ids, x.span_pos[keep], x.span_word[keep], x.labels[keep])
                units.append(DocSpanFeatures([x]))
        return units

    def collate(self, featurizer: SpanFeaturizer, features: Sequence[DocSpanFeatures]) -> SpanBatch:
        return collate_spans(featurizer, list(features))

    def run(self, batch: SpanBatch, graphs: Graphs, config: PLMarkerNERConfig, timer=NULL_TIMER) -> torch.Tensor:
        encoder = graphs["encoder"]
        with timer("encoder"):
            if config.text_once and isinstance(encoder, MarkerEncoder) and not torch.is_grad_enabled():
                states = text_once_states(encoder.transformer, batch)
            else:
                states = encoder(batch.input_ids, batch.position_ids, batch.attention_mask)
        with timer("head"):
            return graphs["classifier"](states, batch.start_index, batch.end_index, batch.text_start, batch.text_end)

    def decode(self, batch: SpanBatch, raw: torch.Tensor, config: PLMarkerNERConfig, threshold: float | None = None,
               top_k: int | None = None) -> list[list]:
        """Softmax over types + none; the best non-none label of each span, then greedy overlap removal.
        `threshold` (optional) is a minimum probability. A model trained on a fraction r of the non-entity spans
        saw "none" r times as often as it occurs: its none-logit gets log(1 / r) back (prior correction)."""
        logits = raw.float()
        if config.train_negative_ratio < 1.0:
            logits = logits.clone()
            logits[..., 0] += math.log(1.0 / config.train_negative_ratio)
        probs = logits.softmax(-1)
        best, label = probs[..., 1:].max(-1)  # the best entity type of each span
        keep = batch.span_mask & (label + 1 == probs.argmax(-1)) & (best >= (threshold or 0.0))
        n, k = keep.nonzero(as_tuple=True)
        docs = batch.instance_doc[n].tolist()
        words = batch.span_word[n, k].tolist()
        cands: list[list] = [[] for _ in range(batch.num_docs)]
        for d, (s, a, b), p, lab in zip(docs, words, best[n, k].tolist(), label[n, k].tolist()):
            cands[d].append((p, s, a, b, lab))
        return [[PredictedSpan(s, a, b, config.entity_types[lab], p) for p, s, a, b, lab in select_spans(c, config.nested)]
                for c in cands]

    def parity_outputs(self, batch: SpanBatch, raw: torch.Tensor, features: Sequence[DocSpanFeatures],
                       config: PLMarkerNERConfig) -> list[ParityOutputs]:
        preds = self.decode(batch, raw, config)
        logits, mask = raw.float().cpu(), batch.span_mask.cpu()
        out = []
        for d, p in enumerate(preds):
            rows = (batch.instance_doc.cpu() == d)[:, None] & mask
            scores = logits[rows]  # [spans of the document, C]
            decisions = F.one_hot(scores.argmax(-1), scores.shape[-1]).bool()
            out.append(ParityOutputs(scores, decisions, [(s.sent_id, s.start, s.end, s.type) for s in p], p))
        return out

    def loss(self, model: PLMarkerNER, batch: SpanBatch) -> tuple[torch.Tensor, int]:
        logits = model(batch)
        count = int((batch.labels != -100).sum())
        if count == 0:
            return logits.sum() * 0.0, 0
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch.labels.reshape(-1), ignore_index=-100), count

    def param_groups(self, model: PLMarkerNER, args: Any) -> list[dict]:
        """The encoder at lr_encoder, the span classifier at lr_classifier."""
        enc = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
        head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
        return [{"params": enc, "lr": args.lr_encoder, "name": "encoder"}, {"params": head, "lr": args.lr_classifier, "name": "classifier"}]

    def score(self, docs: Sequence[Document], predictions: Sequence[list], train_facts: set | None = None) -> Scores:
        return span_scores(docs, predictions)

    def graphs(self, model: PLMarkerNER) -> dict[str, nn.Module]:
        return {"encoder": model.encoder, "classifier": model.classifier}

    def export_spec(self) -> ExportSpec:
        return EXPORT_SPEC


FAMILY = PLMarkerNERFamily()
