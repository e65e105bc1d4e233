"""Shared fixtures: a tiny WordPiece tokenizer and tiny random BERT encoders built locally."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from docunet.checkpoint import encoder_config_dict
from docunet.documents import Document, Mention, Relation
from docunet.models.docunet.config import DocuNetConfig
from docunet.models.docunet.featurize import Featurizer
from docunet.models.docunet.modeling import DocuNet

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Tiny models run far faster on one thread than on several (no threading overhead on 2 shared cores).
torch.set_num_threads(1)

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
ORGS = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
CITIES = ["paris", "berlin", "rome", "oslo", "lima", "cairo"]
FILLER = ["the", "a", "of", "and", "in", "was", "is", "works", "for", "born", "at", "lives", "city", "company", ".", ",",
          "long", "text", "filler", "word", "un", "##known"]
RELATIONS = ["Na", "employer", "birthplace", "headquarters"]


def data_path(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(scope="session")
def tokenizer() -> BertTokenizerFast:
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "*", "entity"]
    vocab += sorted(set(NAMES + ORGS + CITIES + FILLER))
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def tiny_transformer(tokenizer, seed: int = 0, layers: int = 2, hidden: int = 32, heads: int = 4) -> BertModel:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=512,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertModel(cfg, add_pooling_layer=False)


def tiny_config(transformer, **overrides) -> DocuNetConfig:
    base = dict(relations=list(RELATIONS), entity_types=["PER", "ORG", "LOC"], encoder_name="tiny",
                encoder_config=encoder_config_dict(transformer), unet_down_channels=8, unet_out_channels=16,
                emb_size=32, block_size=8, top_k=0)
    base.update(overrides)
    return DocuNetConfig(**base)


def tiny_model(tokenizer, seed: int = 0, **overrides) -> tuple[DocuNet, Featurizer]:
    transformer = tiny_transformer(tokenizer, seed)
    config = tiny_config(transformer, **overrides)
    torch.manual_seed(seed)
    model = DocuNet(config, transformer).eval()
    return model, Featurizer(tokenizer, config)


def synthetic_document(rng: random.Random, title: str, n_filler: int = 0, n_pairs: int = 2) -> Document:
    """Sentences like 'alice works for acme .' whose relation follows from the words."""
    sents, entities, relations = [], [], []
    index: dict[tuple[str, str], int] = {}

    def entity(name: str, etype: str, sid: int, pos: int) -> int:
        key = (name, etype)
        if key not in index:
            index[key] = len(entities)
            entities.append([])
        entities[index[key]].append(Mention(sid, pos, pos + 1, etype, name))
        return index[key]

    people = rng.sample(NAMES, n_pairs)
    for person in people:
        kind = rng.choice(["employer", "birthplace", "headquarters"])
        sid = len(sents)
        if kind == "employer":
            org = rng.choice(ORGS)
            sents.append([person, "works", "for", org, "."])
            relations.append(Relation(entity(person, "PER", sid, 0), entity(org, "ORG", sid, 3), "employer"))
        elif kind == "birthplace":
            city = rng.choice(CITIES)
            sents.append([person, "was", "born", "in", city, "."])
            relations.append(Relation(entity(person, "PER", sid, 0), entity(city, "LOC", sid, 4), "birthplace"))
        else:
            org, city = rng.choice(ORGS), rng.choice(CITIES)
            sents.append(["the", "company", org, "is", "in", city, "."])
            relations.append(Relation(entity(org, "ORG", sid, 2), entity(city, "LOC", sid, 5), "headquarters"))
        if n_filler:
            sents.append([rng.choice(FILLER[:-2]) for _ in range(n_filler)])
    relations = list({(r.head, r.tail, r.label): r for r in relations}.values())
    return Document(title, sents, entities, relations, source=f"synthetic:{title}")


def many_entities_document(n_entities: int, title: str = "crowd") -> Document:
    """One sentence per entity: a document with as many entities as asked (no relations)."""
    words = NAMES + ORGS + CITIES
    sents = [[words[i % len(words)], "is", "long", "text", "."] for i in range(n_entities)]
    entities = [[Mention(i, 0, 1, "PER", sents[i][0])] for i in range(n_entities)]
    return Document(title, sents, entities, [], source="synthetic:crowd")


def as_dict(d: Document) -> dict:
    """A Document as a DocRED-style dict without labels (runtime input)."""
    return {"title": d.title, "sents": d.sents,
            "vertexSet": [[{"name": m.name, "sent_id": m.sent_id, "pos": [m.start, m.end], "type": m.type} for m in e] for e in d.entities]}


def to_docred(d: Document) -> dict:
    """A Document as a labelled DocRED-style dict (training / evaluation files)."""
    return {**as_dict(d), "labels": [{"h": r.head, "t": r.tail, "r": r.label, "evidence": []} for r in d.relations or []]}
