"""DocuNet's exported form: two graphs (encoder, head), their axes and examples, the fp16 and int8
policies, TensorRT profiles, the documents every export is checked on, and its manifest entries.

Graphs (read by the generic exporter in docunet/export/):
- `encoder.onnx`: input_ids [windows, seq] int32, attention_mask [windows, seq] int32,
  query_pos [windows, queries] int32 -> token_states [windows, seq, d] float32,
  query_attn [windows, H, queries, seq] float32.
- `head.onnx`: token_states [batch, doc_len, d], entity_emb [batch, grid, d],
  entity_attn [batch, grid, H, doc_len] float32, entity_mask [batch, grid] bool ->
  logits [batch, grid, grid, R] float32.
The grid axis is dynamic: one head graph serves N = 42 and every larger grid size (42 + k * 14);
the parity documents reach at least two grid sizes.
"""
from __future__ import annotations

import random

import torch
from torch import nn

from ...documents import Document, Mention
from ...engines.tensorrt import buckets
from ..base import ExportSpec, Fp16Policy, GraphSpec
from .batching import plan_windows
from .config import DocuNetConfig
from .featurize import DocFeatures, Featurizer

ENCODER_AXES = {"input_ids": {0: "windows", 1: "seq"}, "attention_mask": {0: "windows", 1: "seq"},
                "query_pos": {0: "windows", 1: "queries"}}
HEAD_AXES = {"token_states": {0: "batch", 1: "doc_len"}, "entity_emb": {0: "batch", 1: "grid"},
             "entity_attn": {0: "batch", 1: "grid", 3: "doc_len"}, "entity_mask": {0: "batch", 1: "grid"}}
KEPT_FP32 = ("LayerNormalization, Softmax, ReduceLogSumExp and reductions; the encoder's attention-row recomputation; "
             "the head's feature map, grouped bilinear and output (final logits)")


class EncoderForExport(nn.Module):
    """The encoder with int32 query positions (every graph input is int32, as TensorRT prefers)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, query_pos: torch.Tensor):
        return self.encoder(input_ids, attention_mask, query_pos.long())


def encoder_example(config: DocuNetConfig) -> tuple[torch.Tensor, ...]:
    vocab = int(config.encoder_config.get("vocab_size", 100))
    g = torch.Generator().manual_seed(0)
    W, T, Q = 3, min(24, config.max_sequence_length), 5
    ids = torch.randint(0, vocab, (W, T), generator=g, dtype=torch.int32)
    lengths = torch.tensor([T, T - 3, T - 7])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.int32)
    query_pos = torch.randint(0, T - 7, (W, Q), generator=g, dtype=torch.int32)
    return ids, mask, query_pos


def head_example(config: DocuNetConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    B, L, N, d, H = 2, 29, config.grid_size, config.hidden_size, config.num_heads
    token_states = torch.randn(B, L, d, generator=g)
    entity_emb = torch.randn(B, N, d, generator=g)
    entity_attn = torch.rand(B, N, H, L, generator=g).softmax(-1)
    entity_mask = torch.arange(N)[None, :] < torch.tensor([[5], [min(N, 9)]])
    return token_states, entity_emb, entity_attn, entity_mask


ENCODER = GraphSpec(
    name="encoder", file="encoder.onnx", inputs=("input_ids", "attention_mask", "query_pos"),
    outputs=("token_states", "query_attn"), axes=ENCODER_AXES,
    dims=lambda cfg: {"windows": (1, 65536), "seq": (2, cfg.max_sequence_length), "queries": (1, 65536)},
    example=encoder_example, module=lambda model: EncoderForExport(model.encoder),
    transformer=lambda model: model.encoder.transformer,
    # inside the transformer (and its last layer's q/k); the attention-row recomputation stays fp32
    fp16=Fp16Policy(below=("DocuNetEncoder",)), int8="dynamic")
HEAD = GraphSpec(
    name="head", file="head.onnx", inputs=("token_states", "entity_emb", "entity_attn", "entity_mask"), outputs=("logits",),
    axes=HEAD_AXES, dims=lambda cfg: {"batch": (1, 65536), "doc_len": (2, 1 << 20), "grid": (4, 4096)},
    example=head_example, module=lambda model: model.head,
    # the U-Net and the tanh extractors; the feature map, grouped bilinear and output stay fp32
    fp16=Fp16Policy(inside=("UNet", "CellFeedForward"), feeding=("Tanh", ("PairClassifier",)),
                    fallback_ops=frozenset({"Conv", "Relu", "MaxPool", "Resize"})),
    int8="static")


def trt_profiles(config: DocuNetConfig, settings) -> dict[str, list[dict]]:
    """Optimization profiles (min/opt/max per input) for the encoder and head graphs."""
    d, H = config.hidden_size, config.num_heads
    n0 = config.grid_size
    n_max = settings.max_grid or (config.grid_size + 2 * config.grid_step)
    enc = []
    for lo, hi in buckets(settings.seq_buckets, config.max_sequence_length):
        w_opt = min(settings.opt_windows, settings.max_windows)
        tok = {"min": [1, lo], "opt": [w_opt, hi], "max": [settings.max_windows, hi]}
        enc.append({"name": f"seq {lo}-{hi}", "inputs": {
            "input_ids": tok, "attention_mask": dict(tok),
            "query_pos": {"min": [1, 1], "opt": [w_opt, min(hi, 64)], "max": [settings.max_windows, hi]}}})
    head = []
    for lo, hi in buckets(settings.doc_buckets):
        b_opt = min(settings.opt_docs, settings.max_docs)
        b = (1, b_opt, settings.max_docs)
        L = (lo, hi, hi)
        N = (4, n0, max(n0, n_max))  # from 4: the runtime's grid_fit option pads small documents less
        head.append({"name": f"doc_len {lo}-{hi}", "inputs": {
            "token_states": {k: [b[i], L[i], d] for i, k in enumerate(("min", "opt", "max"))},
            "entity_emb": {k: [b[i], N[i], d] for i, k in enumerate(("min", "opt", "max"))},
            "entity_attn": {k: [b[i], N[i], H, L[i]] for i, k in enumerate(("min", "opt", "max"))},
            "entity_mask": {k: [b[i], N[i]] for i, k in enumerate(("min", "opt", "max"))}}})
    return {"encoder": enc, "head": head}


# ----------------------------------------------------------------------------------------------
# Parity documents: a >max_window document, a full grid, and one grid bucket larger
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


def describe_documents(featurizer: Featurizer, docs: list[Document], features: list[DocFeatures]) -> dict:
    """Title -> tokens, entities, encoder windows and grid size of each parity document."""
    cfg = featurizer.config
    out = {}
    for d, f in zip(docs, features):
        n_windows = len(plan_windows(f.length, cfg.max_window, cfg.window_overlap, len(featurizer.prefix), len(featurizer.suffix)))
        out[d.title] = {"tokens": f.length, "entities": f.num_entities, "windows": n_windows, "grid": cfg.grid_for(f.num_entities)}
    return out


def manifest_model(cfg: DocuNetConfig) -> dict:
    """Vocabulary and decoding settings recorded in the manifest (checked against config.json on load)."""
    return {"relations": cfg.relations, "relation_names": cfg.relation_names, "entity_types": cfg.entity_types,
            "markers": cfg.markers, "threshold": cfg.threshold, "top_k": cfg.top_k, "loss": cfg.loss,
            "grid_size": cfg.grid_size, "grid_step": cfg.grid_step, "max_window": cfg.max_window,
            "window_overlap": cfg.window_overlap, "hidden_size": cfg.hidden_size, "num_heads": cfg.num_heads,
            "encoder_name": cfg.encoder_name}


def manifest_extras(cfg: DocuNetConfig, report) -> dict:
    grid_checked = sorted({d["grid"] for d in report.sample_documents.values()})
    return {"grid_sizes": {"mode": "dynamic", "description": "one head graph for every grid size; N = grid_size, or "
                           "grid_size + k * grid_step for documents with more entities",
                           "base": cfg.grid_size, "step": cfg.grid_step, "validated": grid_checked}}


EXPORT_SPEC = ExportSpec(graphs=(ENCODER, HEAD), trt_profiles=trt_profiles, parity_documents=synthetic_documents,
                         describe_documents=describe_documents, manifest_model=manifest_model,
                         manifest_extras=manifest_extras, kept_fp32=KEPT_FP32)
