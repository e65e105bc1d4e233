"""DocuNet behind the model-family contract (models/base.py)."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ...documents import Document
from ...metrics import Scores, score_relations
from ...timing import NULL_TIMER
from ..base import ExportSpec, Graphs, ModelFamily, ParityOutputs
from .batching import Batch, collate_features
from .config import DocuNetConfig
from .export_spec import EXPORT_SPEC
from .featurize import DocFeatures, Featurizer
from .losses import LOSSES, decision_margin, decode, relations_from_logits
from .modeling import DocuNet, DocuNetEncoder, run_docunet

Groups = list[tuple[torch.Tensor, torch.Tensor]]  # run_docunet's output: (doc indices, logits [b, N, N, R]) per grid size


class DocuNetFamily(ModelFamily):
    model_type = "docunet"
    config_class = DocuNetConfig
    min_entities = 2
    # every ordered pair gets an emb_size x block_size bilinear feature (768 x 64 floats): at 200 entities that is
    # 40,000 pairs, about 8 GB for one document, so larger ones are refused with a clear error instead of an
    # allocation failure (DocRED documents have at most 42)
    max_entities = 200
    # each mention's start token attends over the whole document (ATLOP's localised context pooling): mentions x
    # words above this (about 2 GB of attention at 12 heads) are refused, so a huge text fails with a clear error
    max_mention_words = 40_000_000

    def size_problem(self, doc: Document) -> str | None:
        mentions, words = sum(len(e) for e in doc.entities), doc.num_words
        if mentions * words > self.max_mention_words:
            return (f"has {mentions:,} mentions in {words:,} words, too large for a docunet model (mentions x words is at most "
                    f"{self.max_mention_words:,}; its context pooling grows with both): split the text into smaller documents")
        return super().size_problem(doc)

    def build_model(self, config: DocuNetConfig, transformer: nn.Module) -> DocuNet:
        return DocuNet(config, transformer)

    def make_featurizer(self, tokenizer, config: DocuNetConfig) -> Featurizer:
        return Featurizer(tokenizer, config)

    def collate(self, featurizer: Featurizer, features: Sequence[DocFeatures]) -> Batch:
        return collate_features(featurizer, list(features))

    def run(self, batch: Batch, graphs: Graphs, config: DocuNetConfig, timer=NULL_TIMER) -> Groups:
        return run_docunet(batch, graphs["encoder"], graphs["head"], config, timer)

    def decode(self, batch: Batch, raw: Groups, config: DocuNetConfig, threshold: float | None = None,
               top_k: int | None = None) -> list[list]:
        threshold = config.threshold if threshold is None else threshold
        top_k = config.top_k if top_k is None else top_k
        out: list[list] = [[] for _ in range(batch.batch_size)]
        for docs, logits in raw:
            rels = relations_from_logits(logits, batch.pair_mask[docs], config.relations, config.loss, threshold, top_k,
                                         config.relation_names, config.score_calibration)
            for local, r in zip(docs.tolist(), rels):
                out[local] = r
        return out

    def parity_outputs(self, batch: Batch, raw: Groups, features: Sequence[DocFeatures], config: DocuNetConfig) -> list[ParityOutputs]:
        """Per document: the logits of its real entity block, the decoded labels of its scored pairs, its relations."""
        out: list[ParityOutputs | None] = [None] * batch.batch_size
        for docs, logits in raw:
            logits = logits.float().cpu()
            rels = relations_from_logits(logits, batch.pair_mask[docs].cpu(), config.relations, config.loss, config.threshold,
                                         config.top_k, config.relation_names, config.score_calibration)
            for local, lg, rel in zip(docs.tolist(), logits, rels):
                f = features[local]
                e = f.num_entities
                block = lg[:e, :e].clone()
                pairs = torch.from_numpy(f.pairs)
                dec = decode(block[pairs[:, 0], pairs[:, 1]], config.loss, config.threshold, config.top_k) if len(pairs) else \
                    torch.zeros(0, block.shape[-1], dtype=torch.bool)
                out[local] = ParityOutputs(block, dec, [(r.head, r.tail, r.label) for r in rel], rel)
        return out  # type: ignore[return-value]

    def loss(self, model: DocuNet, batch: Batch) -> tuple[torch.Tensor, int]:
        """Mean loss over the scored pairs of the batch, and their number."""
        loss_fn = LOSSES[model.config.loss]
        total, count = None, 0
        for docs, logits in model(batch):
            n = min(logits.shape[1], batch.pair_mask.shape[1])
            mask = batch.pair_mask[docs][:, :n, :n]
            sel_logits = logits[:, :n, :n][mask]
            sel_labels = batch.labels[docs][:, :n, :n][mask]
            if sel_logits.shape[0] == 0:
                continue
            part = loss_fn(sel_logits, sel_labels) * sel_logits.shape[0]
            total = part if total is None else total + part
            count += sel_logits.shape[0]
        if total is None:
            return torch.zeros((), requires_grad=True), 0
        return total / count, count

    def param_groups(self, model: DocuNet, args: Any) -> list[dict]:
        """Encoder (lr_encoder), extractors + bilinear (lr_classifier), projection + U-Net (lr_unet)."""
        groups: dict[str, list] = {"encoder": [], "classifier": [], "unet": []}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            key = "encoder" if name.startswith("encoder.") else "classifier" if ".classifier." in name else "unet"
            groups[key].append(p)
        lrs = {"encoder": args.lr_encoder, "classifier": args.lr_classifier, "unet": args.lr_unet}
        return [{"params": ps, "lr": lrs[k], "name": k} for k, ps in groups.items() if ps]

    def score(self, config: DocuNetConfig, docs: Sequence[Document], predictions: Sequence[list], train_facts: set | None = None) -> Scores:
        return score_relations(docs, predictions, train_facts)

    def calibrate(self, model: DocuNet, featurizer: Featurizer, docs: Sequence[Document]) -> dict:
        """Platt scaling: score = sigmoid(a * margin + b), fitted by maximum likelihood on every (scored pair,
        relation) of labelled documents, so a score of 0.7 means about 70% of such predictions are right."""
        margins, gold = [], []
        features = self.featurize(featurizer, docs)
        model.eval()
        device = next(model.parameters()).device
        with torch.inference_mode():
            for start in range(0, len(features), 8):
                batch = self.collate(featurizer, features[start : start + 8]).to(device)
                for idx, logits in model(batch):
                    n = min(logits.shape[1], batch.pair_mask.shape[1])
                    mask = batch.pair_mask[idx][:, :n, :n]
                    margins.append(decision_margin(logits[:, :n, :n], model.config.loss)[mask][:, 1:].float().cpu())
                    gold.append(batch.labels[idx][:, :n, :n][mask][:, 1:].float().cpu())
        if not margins:
            return {}
        x, y = torch.cat(margins).flatten(), torch.cat(gold).flatten()
        if y.sum() == 0 or y.sum() == y.numel():
            return {}
        ab = torch.tensor([1.0, 0.0], requires_grad=True)
        opt = torch.optim.LBFGS([ab], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(ab[0] * x + ab[1], y)
            loss.backward()
            return loss

        opt.step(closure)
        a, b = ab.detach().tolist()
        return {"score_calibration": [round(a, 6), round(b, 6)]}

    def graphs(self, model: DocuNet) -> dict[str, nn.Module]:
        return {"encoder": model.encoder, "head": model.head}

    def export_spec(self) -> ExportSpec:
        return EXPORT_SPEC

    def eager_reference(self, model: DocuNet) -> None:
        """Every encoder layer returns its attention probabilities (eager attention), as the original code runs."""
        model.encoder = DocuNetEncoder(model.encoder.transformer, all_layer_attentions=True)


FAMILY = DocuNetFamily()
