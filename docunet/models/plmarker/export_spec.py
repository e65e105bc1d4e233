"""PL-Marker NER's exported form: the marker encoder (explicit position ids, [instances, seq, seq] mask) and
the span classifier, their axes, examples, precision policies, TensorRT profiles and parity documents."""
from __future__ import annotations

import random

import torch

from ...documents import Document, Mention
from ...engines.tensorrt import buckets
from ..base import ExportSpec, Fp16Policy, GraphSpec
from .config import PLMarkerNERConfig
from .featurize import DocSpanFeatures, SpanFeaturizer

INDEX_INPUTS = ("start_index", "end_index", "text_start", "text_end")


def encoder_example(cfg: PLMarkerNERConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    N, L, K = 2, 11, 3
    T = L + 2 * K
    ids = torch.randint(5, int(cfg.encoder_config.get("vocab_size", 100)), (N, T), generator=g, dtype=torch.int32)
    pos = torch.cat([torch.arange(L).repeat(N, 1), torch.randint(1, L - 1, (N, 2 * K), generator=g)], 1).to(torch.int32)
    mask = torch.zeros(N, T, T, dtype=torch.int32)
    mask[:, :, :L] = 1
    mask[:, torch.arange(L, T), torch.arange(L, T)] = 1
    return ids, pos, mask


def classifier_example(cfg: PLMarkerNERConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    N, L, K = 2, 11, 3
    states = torch.randn(N, L + 2 * K, cfg.hidden_size, generator=g)
    idx = [torch.randint(0, L + 2 * K, (N, K), generator=g, dtype=torch.int32) for _ in INDEX_INPUTS]
    return (states, *idx)


ENCODER = GraphSpec(
    name="encoder", file="encoder.onnx", inputs=("input_ids", "position_ids", "attention_mask"), outputs=("states",),
    axes={"input_ids": {0: "instances", 1: "seq"}, "position_ids": {0: "instances", 1: "seq"},
          "attention_mask": {0: "instances", 1: "seq", 2: "seq"}},
    dims=lambda cfg: {"instances": (1, 65536), "seq": (2, 1 << 16)}, example=encoder_example,
    module=lambda model: model.encoder, transformer=lambda model: model.encoder.transformer,
    fp16=Fp16Policy(below=("MarkerEncoder",)), int8="dynamic")
CLASSIFIER = GraphSpec(
    name="classifier", file="classifier.onnx", inputs=("states",) + INDEX_INPUTS, outputs=("logits",),
    axes={"states": {0: "instances", 1: "seq"}, **{n: {0: "instances", 1: "spans"} for n in INDEX_INPUTS}},
    dims=lambda cfg: {"instances": (1, 65536), "seq": (2, 1 << 16), "spans": (1, 4096)}, example=classifier_example,
    module=lambda model: model.classifier, fp16=Fp16Policy(fallback_ops=frozenset()), int8=None)


def trt_profiles(cfg: PLMarkerNERConfig, settings) -> dict[str, list[dict]]:
    """Encoder and classifier profiles per sequence bucket (text window + 2 K markers)."""
    longest = cfg.text_window + 2 * cfg.max_pair_length
    enc, cls = [], []
    for lo, hi in buckets(tuple(b for b in (256, 512, 1024) if b < longest), longest):
        n = (1, min(settings.opt_windows, settings.max_windows), settings.max_windows)
        shape = {k: [n[i], v] for i, (k, v) in enumerate(zip(("min", "opt", "max"), (lo, hi, hi)))}
        enc.append({"name": f"seq {lo}-{hi}", "inputs": {
            "input_ids": shape, "position_ids": dict(shape),
            "attention_mask": {k: v + [v[1]] for k, v in shape.items()}}})
        spans = {k: [n[i], s] for i, (k, s) in enumerate(zip(("min", "opt", "max"), (1, cfg.max_pair_length, cfg.max_pair_length)))}
        cls.append({"name": f"seq {lo}-{hi}", "inputs": {
            "states": {k: v + [cfg.hidden_size] for k, v in shape.items()}, **{name: dict(spans) for name in INDEX_INPUTS}}})
    return {"encoder": enc, "classifier": cls}


def parity_documents(featurizer: SpanFeaturizer, seed: int = 0) -> list[Document]:
    """A short document, one with a sentence longer than the text window, and one with more candidate spans
    than one instance holds (several instances per sentence)."""
    cfg = featurizer.config
    vocab = featurizer.tokenizer.get_vocab()
    words = sorted((w for w in vocab if w.isascii() and w.isalpha() and w.islower() and len(w) >= 3), key=vocab.get)[:400] or ["word"]
    rng = random.Random(seed)
    types = cfg.entity_types or ["MISC"]

    def doc(title: str, lengths: list[int]) -> Document:
        sents = [[rng.choice(words) for _ in range(n)] for n in lengths]
        ents = [[Mention(s, 0, min(2, n), types[s % len(types)], " ".join(sents[s][:2]))] for s, n in enumerate(lengths)]
        return Document(title, sents, ents, None, source=f"synthetic:{title}")

    return [doc("synthetic-short", [6, 9]), doc("synthetic-long-sentence", [cfg.text_window + 20]),
            doc("synthetic-many-spans", [max(12, cfg.max_pair_length // cfg.max_span_width + 5), 7])]


def describe_documents(featurizer: SpanFeaturizer, docs: list[Document], features: list[DocSpanFeatures]) -> dict:
    return {d.title: {"sentences": len(d.sents), "instances": len(f.instances), "spans": sum(len(x.span_pos) for x in f.instances),
                      "tokens": f.length} for d, f in zip(docs, features)}


def manifest_model(cfg: PLMarkerNERConfig) -> dict:
    return {"entity_types": cfg.entity_types, "max_seq_length": cfg.max_seq_length, "max_pair_length": cfg.max_pair_length,
            "max_span_width": cfg.max_span_width, "nested": cfg.nested, "encoder_name": cfg.encoder_name}


EXPORT_SPEC = ExportSpec(graphs=(ENCODER, CLASSIFIER), trt_profiles=trt_profiles, parity_documents=parity_documents,
                         describe_documents=describe_documents, manifest_model=manifest_model,
                         kept_fp32="LayerNormalization, Softmax and reductions; the span classifier")
