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
from .batching import WindowBatch, collate_windows, dense_from_windows
from .config import PLMarkerNERConfig
from .export_spec import EXPORT_SPEC
from .featurize import DocSpanFeatures, SpanFeaturizer, SpanWindow, guesses_shapes, one_case
from .modeling import PLMarkerNER

WINDOWS_PER_CALL = 32  # text windows per graph call (a batch of long documents is run in slices of this many)
PRUNED_NONE_LOGIT = 30.0  # a pruned candidate's "none" logit (its other logits are 0)


def select_spans(candidates: list[tuple[float, int, int, int, int]], nested: bool) -> list[tuple[float, int, int, int, int]]:
    """Greedy decoding over (score, sentence, start, end, label), best first: a span is kept unless it
    overlaps a kept span (flat), or a kept span of the same label (nested, as the original on SciERC)."""
    kept: list[tuple[float, int, int, int, int]] = []
    by_sentence: dict[int, list[tuple[float, int, int, int, int]]] = {}  # overlaps only happen within a sentence
    for c in sorted(candidates, key=lambda x: -x[0]):
        _, s, a, b, label = c
        same = by_sentence.setdefault(s, [])
        if any(a < k[3] and k[2] < b and (not nested or label == k[4]) for k in same):
            continue
        same.append(c)
        kept.append(c)
    return kept


def prune_candidates(batch: WindowBatch, boundary: torch.Tensor, ratio: float, min_spans: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The best max(ceil(ratio x words), min_spans) candidates of each window by boundary score (log P(first piece starts an
    entity) + log P(last piece ends one)), in their original (neighbourhood) order: index [W, K'] into the
    candidates and whether each is kept [W, K'] (False for padding and past a window's budget)."""
    lp = F.logsigmoid(boundary.float())
    score = torch.gather(lp[..., 0], 1, batch.span_first.long()) + torch.gather(lp[..., 1], 1, batch.span_last.long())
    score = score.masked_fill(~batch.span_mask, float("-inf"))
    budget = torch.minimum(torch.ceil(batch.window_words.float() * ratio).long().clamp(min=max(1, min_spans)), batch.span_mask.sum(1))
    k = max(1, int(budget.max()))
    top = score.topk(k, dim=1).indices
    kept = torch.arange(k, device=top.device)[None, :] < budget[:, None]
    index, order = top.masked_fill(~kept, batch.span_first.shape[1]).sort(1)  # kept ones first, by position
    kept = torch.gather(kept, 1, order)
    return index.masked_fill(~kept, 0), kept & torch.gather(batch.span_mask, 1, index.masked_fill(~kept, 0))


_LOST_CASE = {"lower": "has no capital letters", "upper": "is all in capitals",
              "sentence": "has capital letters only where sentences start"}


def case_warning(sents: Sequence[Sequence[str]], one_case_shapes: str = "guess") -> str | None:
    """A warning for text that lost its capitalisation (featurize.one_case), saying whether its word shapes were
    guessed under the one_case_shapes setting, or how to have them guessed; None for text as written."""
    case = one_case(sents)
    if case is None:
        return None
    what = f"the text {_LOST_CASE[case]}: this entity model reads capitalisation"
    if guesses_shapes(case, one_case_shapes):
        return f"{what}, which was guessed here, and finds fewer entities than in the text as written; give the text as written"
    if case == "sentence":
        return (f"{what}; if the text lost it (speech recognition), the setting one_case_shapes=guess-sentence-case "
                "(ner.one_case_shapes for a pipeline) guesses it")
    return f"{what} and finds far fewer entities without it (one_case_shapes=literal); give the text as written"


class PLMarkerNERFamily(ModelFamily):
    model_type = "plmarker-ner"
    config_class = PLMarkerNERConfig
    output = "mentions"
    score_names = ("typed F1", "untyped F1")

    def input_warning(self, config: PLMarkerNERConfig, doc: Document) -> str | None:
        """Text of at least MIN_CASED_WORDS words with letters, all in one case: the word-shape features (the only
        way capitalisation reaches this model over an uncased encoder) see no proper names."""
        return case_warning(doc.sents, config.one_case_shapes) if config.shape_features else None

    def build_model(self, config: PLMarkerNERConfig, transformer: nn.Module) -> PLMarkerNER:
        return PLMarkerNER(config, transformer)

    def make_featurizer(self, tokenizer, config: PLMarkerNERConfig) -> SpanFeaturizer:
        return SpanFeaturizer(tokenizer, config)

    def training_units(self, features: Sequence[DocSpanFeatures], ratio: float = 1.0, seed: int = 0) -> list[DocSpanFeatures]:
        """One text window each (a whole document when it fits); with `ratio` < 1 (config.train_negative_ratio)
        only that fraction of the non-entity spans is kept (a fixed random sample), every entity span is."""
        rng = np.random.default_rng(seed)
        units = []
        for f in features:
            for w in f.windows:
                if w.labels is None:
                    continue
                if ratio < 1.0:
                    keep = (w.labels > 0) | (rng.random(len(w.labels)) < ratio)
                    w = SpanWindow(w.input_ids, w.span_pos[keep], w.span_word[keep], w.span_shape[keep], w.labels[keep],
                                   w.boundary, w.words)
                units.append(DocSpanFeatures([w], f.pair_length))
        return units

    def collate(self, featurizer: SpanFeaturizer, features: Sequence[DocSpanFeatures]) -> WindowBatch:
        return collate_windows(featurizer, list(features))

    def run(self, batch: WindowBatch, graphs: Graphs, config: PLMarkerNERConfig, timer=NULL_TIMER) -> torch.Tensor:
        """Text once per window; the candidates (or the pruned best ones) K at a time against its cached states.
        Logits [W, C, labels]; a pruned candidate gets "none". With config.dense_pass, the original's dense packed
        pass instead (PyTorch graphs only; no pruning)."""
        if config.dense_pass:
            if "dense" not in graphs:
                raise ValueError("dense_pass runs on a PyTorch checkpoint only; exported graphs serve the text-once pass")
            with timer("encoder"):
                dense = dense_from_windows(batch, config.max_pair_length, config.marker_ids)
                logits = graphs["dense"](dense)
            flat = torch.zeros(*batch.span_mask.shape, logits.shape[-1], dtype=logits.dtype)
            flat[batch.span_mask] = logits[dense.span_mask]
            return flat
        W = batch.input_ids.shape[0]
        if W > WINDOWS_PER_CALL:  # a long document: its windows in slices, so memory stays flat
            return torch.cat([self.run(batch.rows(i, i + WINDOWS_PER_CALL), graphs, config, timer)
                              for i in range(0, W, WINDOWS_PER_CALL)], 0)
        with timer("encoder"):
            states, boundary = graphs["text"](batch.input_ids, batch.attention_mask)
        with timer("head"):
            W, C = batch.span_first.shape
            if config.prune_ratio > 0:
                index, kept = prune_candidates(batch, boundary, config.prune_ratio, config.prune_min_spans)
                first, last = torch.gather(batch.span_first, 1, index), torch.gather(batch.span_last, 1, index)
                shape = torch.gather(batch.span_shape, 1, index[..., None].expand(-1, -1, batch.span_shape.shape[-1]))
            else:
                first, last, shape = batch.span_first, batch.span_last, batch.span_shape
            K = config.max_pair_length
            chunks = [graphs["spans"](states, batch.attention_mask, first[:, k : k + K], last[:, k : k + K], shape[:, k : k + K])
                      for k in range(0, first.shape[1], K)]
            logits = torch.cat(chunks, 1).float()
            if config.prune_ratio <= 0:
                return logits
            full = torch.zeros(W, C, logits.shape[-1], dtype=logits.dtype, device=logits.device)
            full[..., 0] = PRUNED_NONE_LOGIT
            w, j = kept.nonzero(as_tuple=True)
            full[w, index[w, j]] = logits[w, j]
            return full

    def decode(self, batch: WindowBatch, raw: torch.Tensor, config: PLMarkerNERConfig, threshold: float | None = None,
               top_k: int | None = None) -> list[list]:
        """Softmax over types + none; the best non-none label of each span, then greedy overlap removal.
        `threshold` (optional) is a minimum probability. A model trained on a fraction r of the non-entity spans
        saw "none" r times as often as it occurs: its none-logit gets config.prior_correction x log(1 / r) back (the
        prior correction; 1 is Bayes', less favours recall)."""
        logits = raw.float()
        if config.train_negative_ratio < 1.0 and config.prior_correction:
            logits = logits.clone()
            logits[..., 0] += config.prior_correction * math.log(1.0 / config.train_negative_ratio)
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

    def parity_outputs(self, batch: WindowBatch, raw: torch.Tensor, features: Sequence[DocSpanFeatures],
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

    def loss(self, model: PLMarkerNER, batch: WindowBatch) -> tuple[torch.Tensor, int]:
        """Cross-entropy over the candidates' labels plus the boundary scorer's binary cross-entropy (first / last
        piece of an entity) over the text of the windows' own sentences."""
        logits, boundary = model(batch)
        count = int((batch.labels != -100).sum())
        loss = logits.sum() * 0.0
        if count:
            loss = loss + F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch.labels.reshape(-1), ignore_index=-100)
        if batch.boundary is not None:
            valid = batch.boundary >= 0
            if valid.any():
                loss = loss + F.binary_cross_entropy_with_logits(boundary.float()[valid], batch.boundary[valid].float())
        return loss, count

    def param_groups(self, model: PLMarkerNER, args: Any) -> list[dict]:
        """The encoder at lr_encoder, the span classifier at lr_classifier."""
        enc = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
        head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
        return [{"params": enc, "lr": args.lr_encoder, "name": "encoder"}, {"params": head, "lr": args.lr_classifier, "name": "classifier"}]

    def score(self, config: PLMarkerNERConfig, docs: Sequence[Document], predictions: Sequence[list], train_facts: set | None = None) -> Scores:
        return span_scores(docs, predictions)

    def graphs(self, model: PLMarkerNER) -> dict[str, nn.Module]:
        return {"text": model.text_graph(), "spans": model.span_graph(), "dense": model.dense}

    def export_spec(self) -> ExportSpec:
        return EXPORT_SPEC


FAMILY = PLMarkerNERFamily()
