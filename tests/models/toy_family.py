"""A second, deliberately different model family, used to show that the generic layers need no branch for it.

Shaped like PL-Marker's graphs rather than DocuNet's: the encoder takes explicit `position_ids` and
a `[B, T, T]` attention mask (one levitated marker per entity after the text, at the position of the
entity's first word piece; text attends to text only, a marker to the text and itself), and a
separate `classifier` graph scores entity pairs from the marker states. Different graph names,
different signatures; the same exporter, validator, manifest, engines and runtime.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from docunet.documents import PredictedRelation
from docunet.metrics import score_relations
from docunet.models.base import ExportSpec, Fp16Policy, GraphSpec, ModelFamily, ParityOutputs
from docunet.timing import NULL_TIMER

MODEL_TYPE = "toy-marker-pairs"


@dataclass
class ToyConfig:
    model_type: ClassVar[str] = MODEL_TYPE
    relations: list[str] = field(default_factory=lambda: ["Na"])
    encoder_config: dict = field(default_factory=dict)
    threshold: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ToyConfig":
        return cls(**{k: v for k, v in data.items() if k not in ("model_type", "format")})

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"model_type": self.model_type, **self.to_dict()}))


@dataclass
class ToyFeatures:
    input_ids: np.ndarray  # [L] word pieces with [CLS]/[SEP], then one marker per entity
    text_len: int
    marker_positions: np.ndarray  # [E] position id of each marker (its entity's first word piece)
    num_entities: int

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


class ToyFeaturizer:
    def __init__(self, tokenizer, config: ToyConfig):
        self.tokenizer, self.config = tokenizer, config
        self.marker_id = tokenizer.convert_tokens_to_ids("[unused1]")

    def __call__(self, docs) -> list[ToyFeatures]:
        out = []
        for d in docs:
            words = [w for s in d.sents for w in s]
            enc = self.tokenizer(words, is_split_into_words=True)
            first_piece = {}
            for i, w in enumerate(enc.word_ids()):
                if w is not None and w not in first_piece:
                    first_piece[w] = i
            offsets = np.cumsum([0] + [len(s) for s in d.sents])
            pos = np.asarray([first_piece[offsets[e[0].sent_id] + e[0].start] for e in d.entities], np.int64)
            ids = np.asarray(enc["input_ids"] + [self.marker_id] * len(pos), np.int64)
            out.append(ToyFeatures(ids, len(enc["input_ids"]), pos, len(pos)))
        return out


@dataclass
class ToyBatch:
    input_ids: torch.Tensor  # [B, T]
    position_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T, T]
    marker_index: torch.Tensor  # [B, E] index of each entity's marker in the sequence
    num_entities: torch.Tensor  # [B]

    def to(self, device) -> "ToyBatch":
        return ToyBatch(*(t.to(device) for t in (self.input_ids, self.position_ids, self.attention_mask, self.marker_index,
                                                  self.num_entities)))


class ToyEncoder(nn.Module):
    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids, position_ids, attention_mask):
        # transformers takes a [B, 1, T, T] mask as it is (no padding-mask processing); as an additive
        # float mask it means the same under eager attention (the exported form) and sdpa
        additive = (1.0 - attention_mask[:, None].float()) * torch.finfo(torch.float32).min
        return self.transformer(input_ids=input_ids.long(), position_ids=position_ids.long(),
                                attention_mask=additive).last_hidden_state


class ToyClassifier(nn.Module):
    def __init__(self, hidden: int, num_relations: int):
        super().__init__()
        self.head, self.tail = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_relations)

    def forward(self, states, marker_index):
        m = torch.gather(states, 1, marker_index.long()[:, :, None].expand(-1, -1, states.shape[-1]))  # [B, E, d]
        pair = torch.tanh(self.head(m)[:, :, None] + self.tail(m)[:, None, :])  # [B, E, E, d]
        return self.out(pair)


class ToyModel(nn.Module):
    def __init__(self, config: ToyConfig, transformer: nn.Module):
        super().__init__()
        self.config = config
        self.encoder = ToyEncoder(transformer)
        self.classifier = ToyClassifier(transformer.config.hidden_size, len(config.relations))


def _example_encoder(cfg):
    T = 9
    mask = torch.ones(2, T, T, dtype=torch.int32)
    return (torch.randint(5, 50, (2, T), dtype=torch.int32), torch.arange(T, dtype=torch.int32).repeat(2, 1), mask)


def _example_classifier(cfg):
    d = int(cfg.encoder_config["hidden_size"])
    return torch.randn(2, 9, d), torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int32)


SPEC = ExportSpec(
    graphs=(
        GraphSpec("text_encoder", "text_encoder.onnx", ("input_ids", "position_ids", "attention_mask"), ("states",),
                  {"input_ids": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"},
                   "attention_mask": {0: "batch", 1: "seq", 2: "seq"}},
                  dims=lambda cfg: {"batch": (1, 1024), "seq": (2, 512)}, example=_example_encoder,
                  module=lambda model: model.encoder, transformer=lambda model: model.encoder.transformer,
                  fp16=Fp16Policy(below=("ToyEncoder",)), int8="dynamic"),
        GraphSpec("classifier", "classifier.onnx", ("states", "marker_index"), ("logits",),
                  {"states": {0: "batch", 1: "seq"}, "marker_index": {0: "batch", 1: "entities"}},
                  dims=lambda cfg: {"batch": (1, 1024), "seq": (2, 512), "entities": (1, 256)},
                  example=_example_classifier, module=lambda model: model.classifier),
    ),
    trt_profiles=lambda cfg, settings: {"text_encoder": [], "classifier": []},
    parity_documents=lambda featurizer: [],
    describe_documents=lambda featurizer, docs, features: {d.title: {"tokens": f.length} for d, f in zip(docs, features)},
    manifest_model=lambda cfg: {"relations": cfg.relations, "threshold": cfg.threshold},
)


class ToyFamily(ModelFamily):
    model_type = MODEL_TYPE
    config_class = ToyConfig

    def build_model(self, config, transformer):
        return ToyModel(config, transformer)

    def make_featurizer(self, tokenizer, config):
        return ToyFeaturizer(tokenizer, config)

    def collate(self, featurizer, features: Sequence[ToyFeatures]) -> ToyBatch:
        B, T = len(features), max(f.length for f in features)
        E = max(f.num_entities for f in features)
        ids = torch.zeros(B, T, dtype=torch.int32)
        pos = torch.zeros(B, T, dtype=torch.int32)
        mask = torch.zeros(B, T, T, dtype=torch.int32)
        marker = torch.zeros(B, E, dtype=torch.int32)
        for b, f in enumerate(features):
            n, L = f.text_len, f.length
            ids[b, :L] = torch.from_numpy(f.input_ids)
            pos[b, :n] = torch.arange(n)
            pos[b, n:L] = torch.from_numpy(f.marker_positions)
            mask[b, :L, :n] = 1  # everything attends to the text; the text never to markers
            mask[b, torch.arange(n, L), torch.arange(n, L)] = 1  # a marker to itself
            mask[b, L:, 0] = 1  # padding rows: something to attend to
            marker[b, : f.num_entities] = torch.arange(n, L)
        return ToyBatch(ids, pos, mask, marker, torch.tensor([f.num_entities for f in features]))

    def run(self, batch: ToyBatch, graphs, config, timer=NULL_TIMER):
        with timer("encoder"):
            states = graphs["text_encoder"](batch.input_ids, batch.position_ids, batch.attention_mask)
        with timer("head"):
            return graphs["classifier"](states, batch.marker_index)

    def decode(self, batch, raw, config, threshold=None, top_k=None):
        threshold = config.threshold if threshold is None else threshold
        out = []
        for b, n in enumerate(batch.num_entities.tolist()):
            logits = raw[b, :n, :n].float()
            keep = (logits[..., 1:] > threshold) & ~torch.eye(n, dtype=torch.bool)[..., None]
            out.append([PredictedRelation(h, t, config.relations[r + 1], float(logits[h, t, r + 1]))
                        for h, t, r in keep.nonzero().tolist()])
        return out

    def parity_outputs(self, batch, raw, features, config):
        preds = self.decode(batch, raw, config)
        return [ParityOutputs(raw[b, :f.num_entities, :f.num_entities].float().cpu(),
                              (raw[b, :f.num_entities, :f.num_entities].reshape(-1, raw.shape[-1]) > config.threshold).cpu(),
                              [(r.head, r.tail, r.label) for r in p], p) for b, (f, p) in enumerate(zip(features, preds))]

    def loss(self, model, batch):
        raise NotImplementedError

    def param_groups(self, model, args) -> list[dict]:
        return [{"params": list(model.parameters()), "lr": args.lr_encoder}]

    def score(self, config, docs, predictions, train_facts=None):
        return score_relations(docs, predictions, train_facts)

    def graphs(self, model) -> dict[str, Any]:
        return {"text_encoder": model.encoder, "classifier": model.classifier}

    def export_spec(self) -> ExportSpec:
        return SPEC


FAMILY = ToyFamily()
