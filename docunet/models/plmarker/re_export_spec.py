"""PL-Marker relation model's exported form: the subject text graph (each subject's text with its solid markers,
once: every layer's states) and the object graph (the objects' levitated markers against those states, K at a
time, and the relation and entity-type heads), their axes, examples, precision policies, TensorRT profiles and
parity documents. Decoding (both directions summed, greedy overlap removal) runs after the graphs (re_decode), so
every engine serves the same decisions."""
from __future__ import annotations

import random

import torch

from ...documents import Document, Mention
from ..base import ExportSpec, Fp16Policy, GraphSpec
from .export_spec import state_layers, marker_profiles
from .re_config import PLMarkerREConfig
from .re_featurize import DocREFeatures, REFeaturizer

OBJECT_INPUTS = ("obj_first", "obj_last", "obj_markers")
N_EX, L_EX, K_EX = 2, 11, 3  # example subjects, text length, objects




def _mask() -> torch.Tensor:
    mask = torch.ones(N_EX, L_EX, dtype=torch.int32)
    mask[1, 7:] = 0
    return mask


def text_example(cfg: PLMarkerREConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, int(cfg.encoder_config.get("vocab_size", 100)), (N_EX, L_EX), generator=g, dtype=torch.int32)
    return ids, _mask()


def objects_example(cfg: PLMarkerREConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    states = torch.randn(N_EX, state_layers(cfg), L_EX, cfg.hidden_size, generator=g)
    sub_pos = torch.tensor([[2, 4], [1, 5]], dtype=torch.int32)
    first = torch.randint(1, 6, (N_EX, K_EX), generator=g, dtype=torch.int32)
    last = first + torch.randint(0, 2, (N_EX, K_EX), generator=g, dtype=torch.int32)
    markers = torch.randint(0, max(1, len(cfg.marker_ids)), (N_EX, K_EX, 2), generator=g, dtype=torch.int32)
    return states, _mask(), sub_pos, first, last, markers


TEXT = GraphSpec(
    name="text", file="text.onnx", inputs=("input_ids", "attention_mask"), outputs=("states",),
    axes={"input_ids": {0: "subjects", 1: "text"}, "attention_mask": {0: "subjects", 1: "text"}},
    dims=lambda cfg: {"subjects": (1, 65536), "text": (2, cfg.text_window)}, example=text_example,
    module=lambda model: model.text_graph(), transformer=lambda model: model.encoder.transformer,
    fp16=Fp16Policy(below=("SubjectTextGraph",)), int8="dynamic")
OBJECTS = GraphSpec(
    name="objects", file="objects.onnx", inputs=("states", "attention_mask", "sub_pos") + OBJECT_INPUTS,
    outputs=("re_logits", "ner_logits"),
    axes={"states": {0: "subjects", 2: "text"}, "attention_mask": {0: "subjects", 1: "text"}, "sub_pos": {0: "subjects"},
          **{n: {0: "subjects", 1: "objects"} for n in OBJECT_INPUTS}},
    # the objects axis admits at least the example's K (a config with K < 3 still exports a dynamic axis)
    dims=lambda cfg: {"subjects": (1, 65536), "text": (2, cfg.text_window), "objects": (1, max(cfg.max_pair_length, K_EX))},
    example=objects_example, module=lambda model: model.object_graph(snapshot=True),
    transformer=lambda model: model.encoder.transformer, ort_fusion="feed-forward", fp16=Fp16Policy(below=("ObjectGraph",)),
    int8="dynamic")


def trt_profiles(cfg: PLMarkerREConfig, settings) -> dict[str, list[dict]]:
    """Text and object graph profiles per text-length bucket (subjects up to settings.max_windows per call); objects
    up to K per call."""
    text, objects = [], []
    for name, shape, states, k in marker_profiles(cfg, settings):
        text.append({"name": name, "inputs": {"input_ids": shape, "attention_mask": dict(shape)}})
        objects.append({"name": name, "inputs": {
            "states": states, "attention_mask": dict(shape), "sub_pos": {key: [v[0], 2] for key, v in shape.items()},
            "obj_first": k, "obj_last": dict(k), "obj_markers": {key: v + [2] for key, v in k.items()}}})
    return {"text": text, "objects": objects}


def parity_documents(featurizer: REFeaturizer, seed: int = 0) -> list[Document]:
    """A short document with nested and overlapping spans and a type the model does not know, one with a sentence
    longer than the text window (spans on both sides of its end), and one with more objects in a sentence than one
    object call takes (several object groups against one subject's text)."""
    cfg = featurizer.config
    vocab = featurizer.tokenizer.get_vocab()
    words = sorted((w for w in vocab if w.isascii() and w.isalpha() and w.islower() and len(w) >= 3), key=vocab.get)[:400] or ["word"]
    rng = random.Random(seed)
    types = cfg.entity_types or ["MISC"]

    def doc(title: str, lengths: list[int], spans: list[list[tuple[int, int]]], odd_type: bool = False) -> Document:
        sents = [[rng.choice(words) for _ in range(n)] for n in lengths]
        ents = [[Mention(s, a, b, types[(s + k) % len(types)], " ".join(sents[s][a:b]))]
                for s, row in enumerate(spans) for k, (a, b) in enumerate(row)]
        if odd_type:
            ents.append([Mention(0, lengths[0] - 1, lengths[0], "UNKNOWN-TYPE", sents[0][-1])])
        return Document(title, sents, ents, None, source=f"synthetic:{title}")

    long = cfg.text_window + 20
    many = cfg.max_pair_length + 3
    return [doc("synthetic-short", [7, 9], [[(0, 1), (2, 4), (3, 4)], [(0, 2), (4, 5), (6, 8)]], odd_type=True),
            doc("synthetic-long-sentence", [long], [[(1, 2), (5, 7), (long // 2, long // 2 + 1), (long - 3, long - 1)]]),
            doc("synthetic-many-objects", [2 * many + 2, 6], [[(2 * i, 2 * i + 1) for i in range(many)], [(0, 1), (3, 5)]])]


def describe_documents(featurizer: REFeaturizer, docs: list[Document], features: list[DocREFeatures]) -> dict:
    return {d.title: {"sentences": len(d.sents), "subjects": len(f.instances), "objects": sum(len(x.obj_pos) for x in f.instances),
                      "tokens": f.length} for d, f in zip(docs, features)}


def manifest_model(cfg: PLMarkerREConfig) -> dict:
    return {"relations": cfg.relations, "symmetric": cfg.symmetric, "entity_types": cfg.entity_types,
            "max_seq_length": cfg.max_seq_length, "max_pair_length": cfg.max_pair_length, "type_markers": cfg.type_markers,
            "marker_ids": cfg.marker_ids, "use_ner_types": cfg.use_ner_types, "original_ranking": cfg.original_ranking,
            "encoder_name": cfg.encoder_name}


EXPORT_SPEC = ExportSpec(graphs=(TEXT, OBJECTS), trt_profiles=trt_profiles, parity_documents=parity_documents,
                         describe_documents=describe_documents, manifest_model=manifest_model,
                         kept_fp32="LayerNormalization, Softmax and reductions")
