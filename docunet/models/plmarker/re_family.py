"""PL-Marker relation extraction (subject-oriented packing) behind the model-family contract (models/base.py).

Input documents carry the entities (gold, or the NER model's predictions); every sentence's spans are subjects
and objects. Output: `re_decode.SpanRelation`s between the input document's entities.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...documents import Document
from ...metrics import Scores
from ...timing import NULL_TIMER
from ..base import ExportSpec, Graphs, ModelFamily, ParityOutputs
from .re_batching import PackedBatch, SubjectBatch, collate_packed, collate_subjects
from .re_config import PLMarkerREConfig
from .re_decode import decode_relations, relation_report, relation_scores
from .re_export_spec import EXPORT_SPEC
from .re_featurize import DocREFeatures, REFeaturizer
from .re_modeling import PLMarkerRE, relation_loss

# subject texts per graph call (a batch of long documents is run in slices of this many); at most the TensorRT profiles'
# largest batch (TrtSettings.max_windows, 32 by default)
SUBJECTS_PER_CALL = 32


class PLMarkerREFamily(ModelFamily):
    model_type = "plmarker-re"
    config_class = PLMarkerREConfig
    output = "relations"
    score_names = ("Rel+ F1", "Rel F1")
    sentence_level = True

    def build_model(self, config: PLMarkerREConfig, transformer: nn.Module) -> PLMarkerRE:
        return PLMarkerRE(config, transformer)

    def make_featurizer(self, tokenizer, config: PLMarkerREConfig) -> REFeaturizer:
        return REFeaturizer(tokenizer, config)

    def training_units(self, features: Sequence[DocREFeatures]) -> list[DocREFeatures]:
        """One subject instance each (the original batches instances), the dummy subjects included."""
        units = []
        for f in features:
            for x in f.instances + f.dummies:
                if x.labels is not None:
                    units.append(DocREFeatures([replace(x, sentence=0)], [f.sentences[x.sentence]], f.pair_length))
        return units

    def collate(self, featurizer: REFeaturizer, features: Sequence[DocREFeatures]) -> SubjectBatch | PackedBatch:
        """The text-once layout, or the original's packed layout with config.dense_pass."""
        if featurizer.config.dense_pass:
            return collate_packed(featurizer, list(features))
        return collate_subjects(featurizer, list(features))

    def run(self, batch: SubjectBatch | PackedBatch, graphs: Graphs, config: PLMarkerREConfig,
            timer=NULL_TIMER) -> tuple[torch.Tensor, torch.Tensor]:
        """(relation logits [N, C, labels], type logits [N, C, types + 1]). Text-once: each subject's text once, its
        objects K at a time against the cached states; a PackedBatch runs the dense pass (PyTorch graphs only)."""
        if isinstance(batch, PackedBatch):
            if "dense" not in graphs:
                raise ValueError("dense_pass runs on a PyTorch checkpoint only; exported graphs serve the text-once pass")
            with timer("encoder"):
                return graphs["dense"](batch)
        out_re, out_ner = [], []
        K = config.max_pair_length
        for r in range(0, batch.input_ids.shape[0], SUBJECTS_PER_CALL):
            rows = slice(r, r + SUBJECTS_PER_CALL)
            with timer("encoder"):
                states = graphs["text"](batch.input_ids[rows], batch.attention_mask[rows])
            with timer("head"):
                chunks = [graphs["objects"](states, batch.attention_mask[rows], batch.sub_pos[rows], batch.obj_first[rows, k:k + K],
                                            batch.obj_last[rows, k:k + K], batch.obj_markers[rows, k:k + K])
                          for k in range(0, batch.obj_first.shape[1], K)]
                out_re.append(torch.cat([c[0] for c in chunks], 1))
                out_ner.append(torch.cat([c[1] for c in chunks], 1))
        return torch.cat(out_re, 0), torch.cat(out_ner, 0)

    def decode(self, batch: SubjectBatch | PackedBatch, raw: tuple[torch.Tensor, torch.Tensor], config: PLMarkerREConfig,
               threshold: float | None = None, top_k: int | None = None) -> list[list]:
        """The original's inference (re_decode); `threshold` is a minimum score, `top_k` does not apply (one class per pair)."""
        return decode_relations(batch, raw[0], raw[1], config, threshold)

    def parity_outputs(self, batch: SubjectBatch | PackedBatch, raw: tuple[torch.Tensor, torch.Tensor],
                       features: Sequence[DocREFeatures], config: PLMarkerREConfig) -> list[ParityOutputs]:
        preds = self.decode(batch, raw, config)
        logits = raw[0].float().cpu()
        doc_of_row = batch.tables.sent_doc.cpu()[batch.sentence.cpu()]
        valid = batch.obj_mask.cpu() & (batch.sub_index.cpu() >= 0)[:, None]
        out = []
        for d, p in enumerate(preds):
            scores = logits[(doc_of_row == d)[:, None] & valid]  # [pairs of the document, labels]
            decisions = F.one_hot(scores.argmax(-1), scores.shape[-1]).bool()
            out.append(ParityOutputs(scores, decisions, [(r.sent_id, r.head_span, r.tail_span, r.label) for r in p], p))
        return out

    def loss(self, model: PLMarkerRE, batch: SubjectBatch | PackedBatch) -> tuple[torch.Tensor, int]:
        """Pair cross-entropy ("none" weighted by config.nil_weight) plus the entity-type head's cross-entropy."""
        re_logits, ner_logits = model.dense(batch) if isinstance(batch, PackedBatch) else model(batch)
        return relation_loss(re_logits, ner_logits, batch.labels, batch.ner_labels, model.config.nil_weight), int((batch.labels != -100).sum())

    def param_groups(self, model: PLMarkerRE, args: Any) -> list[dict]:
        """The encoder at lr_encoder, the relation and type heads at lr_classifier."""
        enc = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
        head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
        return [{"params": enc, "lr": args.lr_encoder, "name": "encoder"}, {"params": head, "lr": args.lr_classifier, "name": "classifier"}]

    def score(self, config: PLMarkerREConfig, docs: Sequence[Document], predictions: Sequence[list],
              train_facts: set | None = None) -> Scores:
        """Rel+ P/R/F1 (Rel F1 in ign_f1) with the given documents' entities, the model's symmetric relations counted
        twice as the original counts them."""
        return relation_scores(docs, predictions, config.symmetric)

    def report(self, config: PLMarkerREConfig, docs: Sequence[Document], predictions: Sequence[list],
               entity_docs: Sequence[Document] | None = None) -> dict:
        """The seed's three numbers: Ent, Rel and Rel+ P/R/F1 (re_decode.relation_report), with the model's symmetric
        relations counted twice as the original counts them."""
        return relation_report(docs, predictions, config.symmetric, entity_docs)

    def graphs(self, model: PLMarkerRE) -> dict[str, Any]:
        return {"text": model.text_graph(), "objects": model.object_graph(), "dense": model.dense}

    def export_spec(self) -> ExportSpec:
        return EXPORT_SPEC


FAMILY = PLMarkerREFamily()
