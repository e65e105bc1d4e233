"""PL-Marker NER's exported form: the text graph (each window's text once: every layer's states and the
boundary scores) and the span graph (candidate markers against those states, and the span classifier),
their axes, examples, precision policies, TensorRT profiles and parity documents. Candidate pruning runs
between the two graphs (family.run), so every engine serves the same pruned pass."""
from __future__ import annotations

import random

import torch

from ...documents import Document, Mention
from ...engines.tensorrt import buckets
from ..base import ExportSpec, Fp16Policy, GraphSpec
from .config import MarkerEncoderSettings, PLMarkerNERConfig
from .featurize import NUM_SHAPES, DocSpanFeatures, SpanFeaturizer

SPAN_INPUTS = ("span_first", "span_last", "span_shape")
W_EX, L_EX, K_EX = 2, 11, 3  # example windows, text length, spans


def state_layers(cfg: MarkerEncoderSettings) -> int:
    """Hidden-state layers the text graph hands the marker graphs: the embeddings and every encoder layer."""
    return int(cfg.encoder_config["num_hidden_layers"]) + 1


def marker_profiles(cfg: MarkerEncoderSettings, settings) -> list[tuple[str, dict, dict, dict]]:
    """TensorRT profile shapes shared by the PL-Marker graphs, one per text-length bucket: its name and, for "min",
    "opt" and "max", the [windows, length] of a text input, the [windows, layers, length, hidden] of the cached text
    states, and the [windows, K] of a marker input (up to K markers per call)."""
    out = []
    for lo, hi in buckets(tuple(b for b in (128, 256) if b < cfg.text_window), cfg.text_window):
        n = (1, min(settings.opt_windows, settings.max_windows), settings.max_windows)
        text = {k: [n[i], v] for i, (k, v) in enumerate(zip(("min", "opt", "max"), (lo, hi, hi)))}
        states = {key: [v[0], state_layers(cfg), v[1], cfg.hidden_size] for key, v in text.items()}
        markers = {key: [n[i], s] for i, (key, s) in enumerate(zip(("min", "opt", "max"), (1, cfg.max_pair_length, cfg.max_pair_length)))}
        out.append((f"text {lo}-{hi}", text, states, markers))
    return out


def text_example(cfg: PLMarkerNERConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, int(cfg.encoder_config.get("vocab_size", 100)), (W_EX, L_EX), generator=g, dtype=torch.int32)
    mask = torch.ones(W_EX, L_EX, dtype=torch.int32)
    mask[1, 7:] = 0
    return ids, mask


def spans_example(cfg: PLMarkerNERConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    states = torch.randn(W_EX, state_layers(cfg), L_EX, cfg.hidden_size, generator=g)
    mask = torch.ones(W_EX, L_EX, dtype=torch.int32)
    mask[1, 7:] = 0
    first = torch.randint(1, 6, (W_EX, K_EX), generator=g, dtype=torch.int32)
    last = first + torch.randint(0, 2, (W_EX, K_EX), generator=g, dtype=torch.int32)
    shape = torch.randint(0, NUM_SHAPES, (W_EX, K_EX, 4), generator=g, dtype=torch.int32)
    return states, mask, first, last, shape


TEXT = GraphSpec(
    name="text", file="text.onnx", inputs=("input_ids", "attention_mask"), outputs=("states", "boundary"),
    axes={"input_ids": {0: "windows", 1: "text"}, "attention_mask": {0: "windows", 1: "text"}},
    dims=lambda cfg: {"windows": (1, 65536), "text": (2, cfg.text_window)}, example=text_example,
    module=lambda model: model.text_graph(), transformer=lambda model: model.encoder.transformer,
    fp16=Fp16Policy(below=("TextGraph",)), int8="dynamic")
SPANS = GraphSpec(
    name="spans", file="spans.onnx", inputs=("states", "attention_mask") + SPAN_INPUTS, outputs=("logits",),
    axes={"states": {0: "windows", 2: "text"}, "attention_mask": {0: "windows", 1: "text"},
          **{n: {0: "windows", 1: "spans"} for n in SPAN_INPUTS}},
    dims=lambda cfg: {"windows": (1, 65536), "text": (2, cfg.text_window), "spans": (1, cfg.max_pair_length)},
    example=spans_example, module=lambda model: model.span_graph(snapshot=True),
    transformer=lambda model: model.encoder.transformer, ort_fusion="feed-forward", fp16=Fp16Policy(below=("SpanGraph",)), int8="dynamic")


def trt_profiles(cfg: PLMarkerNERConfig, settings) -> dict[str, list[dict]]:
    """Text and span graph profiles per text-length bucket; spans up to K per call."""
    text, spans = [], []
    for name, shape, states, k in marker_profiles(cfg, settings):
        text.append({"name": name, "inputs": {"input_ids": shape, "attention_mask": dict(shape)}})
        spans.append({"name": name, "inputs": {"states": states, "attention_mask": dict(shape), "span_first": k,
                                               "span_last": dict(k), "span_shape": {key: v + [4] for key, v in k.items()}}})
    return {"text": text, "spans": spans}


def parity_documents(featurizer: SpanFeaturizer, seed: int = 0) -> list[Document]:
    """A short document, one with a sentence longer than the text window, and one with more candidate spans
    than one call takes (several span groups against one window)."""
    cfg = featurizer.config
    vocab = featurizer.tokenizer.get_vocab()
    words = sorted((w for w in vocab if w.isascii() and w.isalpha() and w.islower() and len(w) >= 3), key=vocab.get)[:400] or ["word"]
    rng = random.Random(seed)
    types = cfg.entity_types or ["MISC"]

    def doc(title: str, lengths: list[int]) -> Document:
        sents = [[rng.choice(words).title() if rng.random() < 0.3 else rng.choice(words) for _ in range(n)] for n in lengths]
        ents = [[Mention(s, 0, min(2, n), types[s % len(types)], " ".join(sents[s][:2]))] for s, n in enumerate(lengths)]
        return Document(title, sents, ents, None, source=f"synthetic:{title}")

    return [doc("synthetic-short", [6, 9]), doc("synthetic-long-sentence", [cfg.text_window + 20]),
            doc("synthetic-many-spans", [max(12, cfg.max_pair_length // cfg.max_span_width + 5), 7])]


def describe_documents(featurizer: SpanFeaturizer, docs: list[Document], features: list[DocSpanFeatures]) -> dict:
    return {d.title: {"sentences": len(d.sents), "windows": len(f.windows), "spans": sum(len(x.span_pos) for x in f.windows),
                      "tokens": f.length} for d, f in zip(docs, features)}


def manifest_model(cfg: PLMarkerNERConfig) -> dict:
    return {"entity_types": cfg.entity_types, "max_seq_length": cfg.max_seq_length, "max_pair_length": cfg.max_pair_length,
            "max_span_width": cfg.max_span_width, "nested": cfg.nested, "shape_features": cfg.shape_features,
            "prune_ratio": cfg.prune_ratio, "encoder_name": cfg.encoder_name}


EXPORT_SPEC = ExportSpec(graphs=(TEXT, SPANS), trt_profiles=trt_profiles, parity_documents=parity_documents,
                         describe_documents=describe_documents, manifest_model=manifest_model,
                         kept_fp32="LayerNormalization, Softmax and reductions")
