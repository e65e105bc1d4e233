"""PL-Marker relation extraction (subject-oriented packing): the label space and its inversion; instances (solid
subject markers, shifted object positions, labels both ways, dummy subjects, type markers, windows); the packed
layout's positions and mask; the text-once pass equal to the dense pass; decoding on hand-made scores; the three
scores; a tiny model that fits; the family through the training loop and a checkpoint reload."""
from __future__ import annotations

import dataclasses

import json
import random

import numpy as np
import pytest
import torch

from docunet.checkpoint import encoder_config_dict, load_checkpoint
from docunet.documents import Document, Mention, Relation
from docunet.inference import predict_documents
from docunet.models import get_family
from docunet.models.plmarker.re_batching import collate_packed, collate_subjects
from docunet.models.plmarker.re_config import LabelSpace, PLMarkerREConfig, default_symmetric
from docunet.models.plmarker.re_decode import SpanRelation, decode_relations, relation_report, select_relations
from docunet.models.plmarker.re_featurize import DUMMY, REFeaturizer
from docunet.models.plmarker.re_modeling import relation_loss
from docunet.readers import load_documents
from docunet.training import TrainArgs, train
from tests.conftest import CITIES, NAMES, ORGS, data_path, tiny_transformer

FAMILY = get_family("plmarker-re")
RELATIONS = ["employer", "birthplace", "CONJUNCTION", "located"]
TYPES = ["PER", "ORG", "LOC"]


def make(tokenizer, seed: int = 0, **overrides):
    transformer = tiny_transformer(tokenizer, seed)
    cfg = PLMarkerREConfig(relations=list(RELATIONS), symmetric=default_symmetric(RELATIONS), entity_types=list(TYPES),
                           encoder_config=encoder_config_dict(transformer), **{"max_seq_length": 40, "max_pair_length": 4, **overrides})
    torch.manual_seed(seed)
    return FAMILY.build_model(cfg, transformer).eval(), FAMILY.make_featurizer(tokenizer, cfg)


def hand_doc() -> Document:
    """'alice and bob works for acme in paris .': spans alice, bob, acme, paris, and 'acme in paris' (overlapping)."""
    sent = ["alice", "and", "bob", "works", "for", "acme", "in", "paris", "."]
    ents = [[Mention(0, 0, 1, "PER", "alice")], [Mention(0, 2, 3, "PER", "bob")], [Mention(0, 5, 6, "ORG", "acme")],
            [Mention(0, 7, 8, "LOC", "paris")], [Mention(0, 5, 8, "ORG", "acme in paris")]]
    rels = [Relation(1, 2, "employer"), Relation(0, 1, "CONJUNCTION"), Relation(2, 3, "located")]
    return Document("hand", [sent], ents, rels, source="synthetic:hand")


def re_doc(rng: random.Random, title: str, n_sents: int = 3) -> Document:
    """Sentences whose relations follow from the words: 'P and P works for O .', 'P was born in C .', 'O is in C .'."""
    sents, ents, rels = [], [], []

    def ent(sid: int, pos: int, etype: str, word: str) -> int:
        ents.append([Mention(sid, pos, pos + 1, etype, word)])
        return len(ents) - 1

    for s in range(n_sents):
        kind = rng.randrange(3)
        if kind == 0:
            p1, p2 = rng.sample(NAMES, 2)
            org = rng.choice(ORGS)
            sents.append([p1, "and", p2, "works", "for", org, "."])
            a, b, c = ent(s, 0, "PER", p1), ent(s, 2, "PER", p2), ent(s, 5, "ORG", org)
            rels += [Relation(a, b, "CONJUNCTION"), Relation(b, c, "employer")]
        elif kind == 1:
            p, city = rng.choice(NAMES), rng.choice(CITIES)
            sents.append([p, "was", "born", "in", city, "."])
            rels.append(Relation(ent(s, 0, "PER", p), ent(s, 4, "LOC", city), "birthplace"))
        else:
            org, city = rng.choice(ORGS), rng.choice(CITIES)
            sents.append(["the", "company", org, "is", "in", city, "."])
            rels.append(Relation(ent(s, 2, "ORG", org), ent(s, 5, "LOC", city), "located"))
    return Document(title, sents, ents, rels, source=f"synthetic:{title}")


def test_label_space_and_inversion_round_trip():
    """none + symmetric + asymmetric + inverse of asymmetric (SciERC: 8 + 8 - 3 = 13 as the original); the inverse
    of every class is an involution, and reading a relation back from its inverse class flips the pair."""
    scierc = ["USED-FOR", "FEATURE-OF", "HYPONYM-OF", "PART-OF", "COMPARE", "CONJUNCTION", "EVALUATE-FOR"]
    space = LabelSpace(scierc, default_symmetric(scierc))
    assert len(space) == 13 and space.names[:3] == ["none", "COMPARE", "CONJUNCTION"]
    assert space.names[3:8] == ["USED-FOR", "FEATURE-OF", "HYPONYM-OF", "PART-OF", "EVALUATE-FOR"]
    assert space.names[8:] == [r + "^-1" for r in space.names[3:8]]
    assert all(space.inverse(space.inverse(k)) == k for k in range(13))
    assert space.permutation == [0, 1, 2, 8, 9, 10, 11, 12, 3, 4, 5, 6, 7]
    for r in scierc:
        forward, backward = space.labels_of(r)
        assert space.relation_of(forward) == (r, False)
        assert space.relation_of(backward) == (r, r not in ("COMPARE", "CONJUNCTION"))
    assert PLMarkerREConfig(relations=scierc, symmetric=["COMPARE", "CONJUNCTION"]).num_labels == 13
    with pytest.raises(ValueError, match="symmetric relations"):
        PLMarkerREConfig(relations=scierc, symmetric=["NOPE"])


def test_subject_instances_by_hand(tokenizer):
    """One instance per subject: the solid markers wrap the subject in the text; objects (every span, the subject
    included) sit at their first / last piece shifted past the markers; labels in both directions."""
    _, feat = make(tokenizer)
    (f,) = feat([hand_doc()])
    spans = f.sentences[0].spans.tolist()
    assert spans == [[0, 1], [2, 3], [5, 6], [5, 8], [7, 8]]  # sorted (start, end)
    assert [x.sub_index for x in f.instances] == [0, 1, 2, 3, 4] and len(f.dummies) == 1
    x = f.instances[2]  # subject "acme" (word 5)
    tokens = tokenizer.convert_ids_to_tokens(x.input_ids.tolist())
    assert tokens == ["[CLS]", "alice", "and", "bob", "works", "for", "[unused0]", "acme", "[unused1]", "in", "paris", ".", "[SEP]"]
    assert x.sub_pos.tolist() == [6, 8]
    # alice, bob before the subject: unshifted; acme itself: inside the markers; 'acme in paris' starts at the
    # subject (+1) and ends after it (+2); paris after it (+2)
    assert x.obj_pos.tolist() == [[1, 1], [3, 3], [7, 7], [7, 10], [10, 10]]
    ls = feat.labels
    assert x.labels.tolist() == [0, ls.labels_of("employer")[1], 0, 0, ls.labels_of("located")[0]]
    assert f.instances[1].labels.tolist() == [ls.index["CONJUNCTION"], 0, ls.index["employer"], 0, 0]
    assert f.instances[0].labels.tolist() == [0, ls.index["CONJUNCTION"], 0, 0, 0]  # symmetric: same class both ways
    assert x.ner_labels.tolist() == [1, 1, 2, 2, 3] and x.obj_markers.tolist() == [[2, 3]] * 5
    y = f.instances[3]  # subject 'acme in paris': paris ends inside it (+1), starts inside it (+1)
    assert y.sub_pos.tolist() == [6, 10] and y.obj_pos.tolist() == [[1, 1], [3, 3], [7, 7], [7, 9], [9, 9]]
    d = f.dummies[0]  # the dummy subject: markers after the text, objects unshifted, every pair "none"
    assert d.sub_index == DUMMY and d.sub_pos.tolist() == [11, 12] and len(d.input_ids) == 13
    assert d.obj_pos.tolist() == [[1, 1], [3, 3], [6, 6], [6, 8], [8, 8]] and not d.labels.any()
    chunks = x.chunks(2)  # the original's packing: K objects per instance, the same text
    assert [c.obj_index.tolist() for c in chunks] == [[0, 1], [2, 3], [4]]
    assert all(c.input_ids is x.input_ids and c.sub_pos is x.sub_pos for c in chunks)


def test_a_given_reverse_relation_wins_over_the_inverse_class(tokenizer):
    """As the original: the given directions first, then the inverse class only for reversed pairs not given."""
    _, feat = make(tokenizer)
    doc = hand_doc()
    doc.relations = [Relation(1, 2, "employer"), Relation(2, 1, "located"), Relation(0, 1, "CONJUNCTION"), Relation(1, 0, "CONJUNCTION")]
    gold, ls = feat.gold(doc), feat.labels
    assert gold[(0, 2, 3, 5, 6)] == ls.index["employer"] and gold[(0, 5, 6, 2, 3)] == ls.index["located"]
    assert gold[(0, 0, 1, 2, 3)] == gold[(0, 2, 3, 0, 1)] == ls.index["CONJUNCTION"] and len(gold) == 4
    rep = relation_report([doc], [[]], ["CONJUNCTION"])  # a symmetric relation given both ways is still 2 gold, not 4
    assert rep["rel"]["gold"] == 1 + 1 + 2


def test_type_markers(tokenizer):
    """--use_typemarker: solid and levitated markers per entity type, [unused4 + 4t + j]."""
    _, feat = make(tokenizer, type_markers=True)
    assert feat.marker_ids == tokenizer.convert_tokens_to_ids([f"[unused{i}]" for i in range(16)])
    (f,) = feat([hand_doc()])
    x = f.instances[2]  # subject acme: ORG (t = 1) -> [unused8] acme [unused9]
    assert tokenizer.convert_ids_to_tokens(x.input_ids.tolist())[6:9] == ["[unused8]", "acme", "[unused9]"]
    assert x.obj_markers.tolist() == [[6, 7], [6, 7], [10, 11], [10, 11], [14, 15]]  # PER, PER, ORG, ORG, LOC
    assert tokenizer.convert_ids_to_tokens(f.dummies[0].input_ids.tolist())[-2:] == ["[unused0]", "[unused1]"]


def test_packed_layout_positions_and_mask(tokenizer):
    _, feat = make(tokenizer, max_pair_length=2, dense_pass=True)
    (f,) = feat([hand_doc()])
    b = collate_packed(feat, [f])
    assert b.input_ids.shape[0] == 5 * 3 and b.obj_mask.sum() == 25  # 5 subjects x 3 chunks, 25 pairs
    L, K = 13, 2
    n = 2 * 3 + 1  # subject acme, its second chunk: objects acme, 'acme in paris'
    assert b.sub_index[n] == 2 and b.obj_index[n].tolist() == [2, 3]
    assert b.input_ids[n, L:L + K].tolist() == [feat.marker_ids[2]] * 2 and b.input_ids[n, L + K:].tolist() == [feat.marker_ids[3]] * 2
    assert b.position_ids[n, :L].tolist() == list(range(L))
    assert b.position_ids[n, L:].tolist() == [7, 7, 7, 10]
    m = b.attention_mask[n]
    assert m[:L, :L].all() and not m[:L, L:].any()  # text (solid markers included) never sees an object marker
    for j in range(K):
        row = m[L + j]
        assert row[:L].all() and row[L + j] and row[L + K + j] and int(row.sum()) == L + 2
        assert m[L + K + j, L + j] and int(m[L + K + j].sum()) == L + 2
    last = 4 * 3 + 2  # subject paris, third chunk: one object, its padded slot attends to token 0 only
    assert b.obj_mask[last].tolist() == [True, False] and int(b.attention_mask[last, L + 1].sum()) == 1


def test_text_once_pass_equals_dense_pass(tokenizer):
    """The subject's text once and all its objects against the cached states: the dense pass's logits."""
    model, feat = make(tokenizer, max_pair_length=2, type_markers=True)
    docs = [hand_doc()] + [re_doc(random.Random(i), f"d{i}") for i in range(3)]
    features = feat(docs)
    with torch.no_grad():
        sub = collate_subjects(feat, features)
        re1, ner1 = FAMILY.run(sub, FAMILY.graphs(model), model.config)
        packed = collate_packed(feat, features)
        re2, ner2 = FAMILY.run(packed, FAMILY.graphs(model), model.config)
    a = torch.cat([re1[sub.obj_mask], ner1[sub.obj_mask]], -1)
    b = torch.cat([re2[packed.obj_mask], ner2[packed.obj_mask]], -1)
    assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    x, y = FAMILY.decode(sub, (re1, ner1), model.config), FAMILY.decode(packed, (re2, ner2), model.config)
    facts = lambda preds: [[(r.head, r.tail, r.label, round(r.score, 4)) for r in p] for p in preds]  # noqa: E731
    assert facts(x) == facts(y) and sum(map(len, x)) > 0
    parity = FAMILY.parity_outputs(sub, (re1, ner1), features, model.config)  # what export validation compares, per document
    assert [p.scores.shape[0] for p in parity] == [sum(len(i.obj_pos) for i in f.instances) for f in features]
    assert [len(p.facts) for p in parity] == [len(p) for p in x]


def test_decoding_on_hand_made_scores(tokenizer):
    """Both directions' log-softmax summed; an inverse class flips the pair; lower-scored duplicates dropped."""
    _, feat = make(tokenizer)
    cfg = feat.config
    ls = cfg.labels
    doc = hand_doc()
    b = collate_subjects(feat, feat([doc]))
    C = len(ls)
    re_logits = torch.zeros(*b.obj_mask.shape, C)
    re_logits[..., 0] = 5.0  # "none" everywhere, except:

    def pair(i: int, j: int, cls: int | None, v: float = 10.0) -> None:  # subject i, object j; None: uniform scores
        k = b.obj_index[i].tolist().index(j)
        re_logits[i, k] = 0.0
        if cls is not None:
            re_logits[i, k, cls] = v

    pair(1, 2, ls.index["employer"])  # bob -> acme: employer, and acme -> bob: inverse employer
    pair(2, 1, ls.labels_of("employer")[1])
    pair(0, 1, ls.index["CONJUNCTION"])  # symmetric: the same class both ways
    pair(1, 0, ls.index["CONJUNCTION"])
    pair(2, 4, ls.labels_of("located")[1], 8.0)  # acme -> paris: inverse located (paris -> acme), flipped back;
    pair(4, 2, None)  # the other direction undecided
    pair(3, 4, ls.labels_of("located")[1], 12.0)  # the same relation from 'acme in paris', scored higher: subjects
    pair(4, 3, None)  # (paris) and objects (acme, 'acme in paris') overlap, so only one of the two is kept
    ner = torch.zeros(*b.obj_mask.shape, len(TYPES) + 1)
    cfg.original_ranking = False  # ranked by the chosen (inverse) class's score: the better one is kept
    (preds,) = decode_relations(b, re_logits, ner, cfg)
    got = {(r.head_span, r.tail_span, r.label, r.head_type, r.tail_type) for r in preds}
    assert got == {((2, 3), (5, 6), "employer", "PER", "ORG"), ((0, 1), (2, 3), "CONJUNCTION", "PER", "PER"),
                   ((7, 8), (5, 8), "located", "LOC", "ORG")}, got
    cfg.original_ranking = True  # the original ranks a flipped relation by its forward class: the other one is kept
    (preds,) = decode_relations(b, re_logits, ner, cfg)
    assert {(r.head_span, r.tail_span) for r in preds if r.label == "located"} == {((7, 8), (5, 6))}
    emp = next(r for r in preds if r.label == "employer")
    assert (emp.head, emp.tail) == (1, 2) and 0 < emp.score < 1 and emp.margin > 0 and not emp.symmetric
    assert next(r for r in preds if r.label == "CONJUNCTION").symmetric
    assert emp.score == pytest.approx(torch.tensor([10.0, 0, 0, 0, 0, 0, 0, 0]).log_softmax(0)[0].exp().item(), rel=1e-4)
    cfg.use_ner_types = False  # types from the head: an argument it calls "none" (all-zero logits: argmax 0) drops it
    assert decode_relations(b, re_logits, ner, cfg) == [[]]
    ner[..., 3] = 1.0  # every object typed LOC by the head
    assert {r.head_type for r in decode_relations(b, re_logits, ner, cfg)[0]} == {"LOC"}


def test_select_relations_drops_overlapping_duplicates():
    cands = [(-0.1, (0, 2), (5, 6), "A"), (-0.2, (1, 2), (5, 7), "A"), (-0.3, (1, 2), (5, 7), "B"), (-0.4, (3, 4), (5, 6), "A")]
    assert [c[0] for c in select_relations(cands)] == [-0.1, -0.3, -0.4]


def test_scores_count_symmetric_relations_twice():
    gold = [hand_doc()]
    rel = lambda h, t, label, ht="PER", tt="ORG": SpanRelation(0, 0, label, 0.9, sent_id=0, head_span=h, tail_span=t,  # noqa: E731
                                                               head_type=ht, tail_type=tt)
    preds = [[rel((2, 3), (5, 6), "employer"),  # right
              rel((2, 3), (0, 1), "CONJUNCTION", "PER", "PER"),  # right, reversed: symmetric, 2 of 2
              rel((7, 8), (5, 6), "located", "LOC", "ORG")]]  # wrong direction
    rep = relation_report(gold, preds, ["CONJUNCTION"])
    assert rep["rel"]["gold"] == 4 and rep["rel"]["predicted"] == 4 and rep["rel"]["correct"] == 3
    assert rep["ent"]["f1"] == 1.0 and rep["rel+"]["correct"] == 3
    preds[0][0] = rel((2, 3), (5, 6), "employer", "ORG", "ORG")  # right relation, wrong head type: Rel yes, Rel+ no
    rep = relation_report(gold, preds, ["CONJUNCTION"])
    assert rep["rel"]["correct"] == 3 and rep["rel+"]["correct"] == 2
    predicted_entities = Document("p", gold[0].sents, gold[0].entities[:3] + [[Mention(0, 7, 8, "ORG", "paris")]], None)
    ent = relation_report(gold, preds, ["CONJUNCTION"], [predicted_entities])["ent"]
    assert (ent["correct"], ent["predicted"], ent["gold"]) == (3, 4, 5)


def test_family_score_counts_the_models_own_symmetric_relations(tokenizer):
    """The score used for selection and export validation follows the model's config, not a list of known names:
    a model that declares "located" symmetric counts its gold fact twice and a reversed prediction of it as right."""
    gold = [hand_doc()]
    reversed_located = [[SpanRelation(0, 0, "located", 0.9, sent_id=0, head_span=(7, 8), tail_span=(5, 6), head_type="LOC",
                                      tail_type="ORG")]]
    plain, _ = make(tokenizer)
    s = FAMILY.score(plain.config, gold, reversed_located)
    assert (s.num_correct, s.num_predicted, s.num_gold) == (0, 1, 4)  # CONJUNCTION twice, employer, located once
    sym = dataclasses.replace(plain.config, symmetric=["CONJUNCTION", "located"])
    s = FAMILY.score(sym, gold, reversed_located)
    assert (s.num_correct, s.num_predicted, s.num_gold) == (2, 2, 5)


def test_long_documents_get_windows_that_fit(tokenizer):
    _, feat = make(tokenizer, max_seq_length=24)
    doc = re_doc(random.Random(5), "long", n_sents=10)
    (f,) = feat([doc])
    assert all(len(x.input_ids) <= 24 for x in f.instances + f.dummies)
    assert len(f.instances) == sum(len(e) for e in doc.entities)  # every span is a subject once
    for x in f.instances:  # the solid markers wrap the subject's pieces wherever its window starts
        s = f.sentences[x.sentence]
        a, b = s.spans[x.sub_index]
        words = tokenizer.convert_ids_to_tokens(x.input_ids[x.sub_pos[0] + 1 : x.sub_pos[1]].tolist())
        assert words == doc.sents[s.sent_id][a:b]
        assert tokenizer.convert_ids_to_tokens(x.input_ids[x.obj_pos[:, 0]].tolist()) == [doc.sents[s.sent_id][i] for i in s.spans[:, 0]]


def test_real_scierc_relations_become_labelled_pairs(tokenizer):
    docs = load_documents(data_path("scierc", "dev.json"))[:10]
    rels = sorted({r.label for d in docs for r in d.relations})
    cfg = PLMarkerREConfig(relations=rels, symmetric=default_symmetric(rels), entity_types=sorted({m.type for d in docs for e in d.entities for m in e}),
                           encoder_config={"hidden_size": 32, "max_position_embeddings": 512})
    features = REFeaturizer(tokenizer, cfg)(docs)
    for d, f in zip(docs, features):
        forward = sum(int((x.labels > 0).sum()) for x in f.instances)
        assert forward == 2 * len({(r.head, r.tail) for r in d.relations})  # both directions of every relation


def test_loss_ignores_padding_and_weights_none():
    re_logits, ner = torch.randn(2, 3, 5), torch.randn(2, 3, 4)
    labels, ner_labels = torch.tensor([[0, 2, -100], [1, -100, -100]]), torch.tensor([[1, 2, -100], [-100, -100, -100]])
    full = relation_loss(re_logits, ner, labels, ner_labels, 1.0)
    expected = torch.nn.functional.cross_entropy(re_logits[labels >= 0], labels[labels >= 0]) + \
        torch.nn.functional.cross_entropy(ner[ner_labels >= 0], ner_labels[ner_labels >= 0])
    assert torch.allclose(full, expected)
    assert not torch.allclose(relation_loss(re_logits, ner, labels, ner_labels, 0.2), full)


def test_tiny_model_fits_hand_built_sentences(tokenizer):
    """A tiny random encoder learns the relations of a few sentences in a few dozen steps (dense-pass loss)."""
    model, feat = make(tokenizer, seed=1)
    docs = [re_doc(random.Random(i), f"d{i}") for i in range(4)]
    units = FAMILY.training_units(feat(docs))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(60):
        batch = FAMILY.collate(feat, [units[j] for j in np.random.default_rng(step).choice(len(units), 8, replace=False)])
        loss, _ = FAMILY.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    preds = predict_documents(model, feat, docs)
    rep = relation_report(docs, preds, feat.config.symmetric)
    assert rep["rel"]["f1"] >= 0.9, rep


def test_family_trains_and_reloads_identically(tokenizer, tmp_path):
    model, feat = make(tokenizer, seed=2)
    docs = [re_doc(random.Random(10 + i), f"d{i}") for i in range(6)]
    args = TrainArgs(epochs=12, batch_size=8, lr_encoder=1e-2, lr_classifier=1e-2, warmup_ratio=0.05, seed=2)
    summary = train(model, feat, docs, docs, args, tmp_path / "ckpt", progress=False)
    assert summary["best_dev_f1"] >= 0.85, summary["epochs"][-1]
    reloaded, rfeat = load_checkpoint(tmp_path / "ckpt")
    assert type(reloaded).__name__ == "PLMarkerRE"
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "plmarker-re"
    a = predict_documents(reloaded, rfeat, docs)
    assert a == predict_documents(load_checkpoint(tmp_path / "ckpt")[0], rfeat, docs) and sum(map(len, a)) >= 8


def to_dygie(d: Document) -> dict:
    """A Document as a DyGIE / SciERC line: document-level inclusive word offsets."""
    offsets = np.cumsum([0] + [len(s) for s in d.sents])
    span = lambda m: [int(offsets[m.sent_id] + m.start), int(offsets[m.sent_id] + m.end - 1)]  # noqa: E731
    ner = [[span(m) + [m.type] for e in d.entities for m in e if m.sent_id == s] for s in range(len(d.sents))]
    rels = [[span(d.entities[r.head][0]) + span(d.entities[r.tail][0]) + [r.label] for r in d.relations
             if d.entities[r.head][0].sent_id == s] for s in range(len(d.sents))]
    return {"doc_key": d.title, "sentences": d.sents, "ner": ner, "relations": rels}


def test_docunet_train_cli_trains_plmarker_re_on_dygie_lines(tokenizer, tmp_path):
    from click.testing import CliRunner

    from docunet.cli.train import main as train_main

    encoder = tmp_path / "encoder"
    tiny_transformer(tokenizer, 4).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    data = tmp_path / "scierc-like.json"
    docs = [re_doc(random.Random(20 + i), f"d{i}") for i in range(4)]
    data.write_text("".join(json.dumps(to_dygie(d)) + "\n" for d in docs))
    assert [(r.head, r.tail, r.label) for r in load_documents(data)[0].relations] == [(r.head, r.tail, r.label) for r in docs[0].relations]
    res = CliRunner().invoke(train_main, ["--model-type", "plmarker-re", "--train", str(data), "--dev", str(data), "--encoder", str(encoder),
                                          "--out", str(tmp_path / "out"), "--epochs", "2", "--batch-size", "8", "--quiet", "--threads", "1",
                                          "--max-seq-length", "48", "--type-markers"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["model_type"] == "plmarker-re" and cfg["relations"] == sorted(RELATIONS) and cfg["symmetric"] == ["CONJUNCTION"]
    assert cfg["max_seq_length"] == 48 and cfg["max_pair_length"] == 16 and cfg["type_markers"]
    assert len(cfg["marker_ids"]) == 4 + 4 * len(cfg["entity_types"])
    model, feat = load_checkpoint(tmp_path / "out")
    assert len(predict_documents(model, feat, docs)) == 4


def test_graphs_export_to_onnx_and_onnxruntime_matches_pytorch(tokenizer, tmp_path):
    """The text-once pass's two graphs (tensor-only signatures) through torch.onnx (dynamo) and ONNX Runtime, run by
    the family: the same logits and relations as PyTorch (the exporter's path: test_relations_export.py)."""
    ort = pytest.importorskip("onnxruntime")
    model, feat = make(tokenizer, seed=7, max_pair_length=3, type_markers=True)
    docs = [hand_doc()] + [re_doc(random.Random(30 + i), f"d{i}") for i in range(3)]
    batch = collate_subjects(feat, feat(docs))
    graphs = {"text": model.text_graph().eval(), "objects": model.object_graph(snapshot=True).eval()}
    N, L, C = (torch.export.Dim(n) for n in ("N", "L", "C"))
    specs = {"text": (("input_ids", "attention_mask"), ("states",), ({0: N, 1: L}, {0: N, 1: L})),
             "objects": (("states", "attention_mask", "sub_pos", "obj_first", "obj_last", "obj_markers"), ("re_logits", "ner_logits"),
                         ({0: N, 2: L}, {0: N, 1: L}, {0: N}, {0: N, 1: C}, {0: N, 1: C}, {0: N, 1: C}))}
    with torch.no_grad():
        states = graphs["text"](batch.input_ids, batch.attention_mask)
        examples = {"text": (batch.input_ids, batch.attention_mask),
                    "objects": (states, batch.attention_mask, batch.sub_pos, batch.obj_first[:, :3], batch.obj_last[:, :3], batch.obj_markers[:, :3])}
    sessions = {}
    for name, (inputs, outputs, shapes) in specs.items():
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(graphs[name], examples[name], dynamo=True, input_names=list(inputs), output_names=list(outputs),
                          dynamic_shapes=shapes, verbose=False).save(str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        sessions[name] = lambda *xs, s=sess, names=inputs: tuple(torch.from_numpy(o) for o in s.run(None, {n: x.numpy() for n, x in zip(names, xs)}))
    onnx_graphs = {"text": lambda *xs: sessions["text"](*xs)[0], "objects": sessions["objects"]}
    with torch.no_grad():
        ref = FAMILY.run(batch, FAMILY.graphs(model), model.config)
    got = FAMILY.run(batch, onnx_graphs, model.config)
    assert (got[0] - ref[0])[batch.obj_mask].abs().max() < 1e-4 and (got[1] - ref[1])[batch.obj_mask].abs().max() < 1e-4
    facts = lambda preds: [[(r.head, r.tail, r.label) for r in p] for p in preds]  # noqa: E731
    assert facts(FAMILY.decode(batch, got, model.config)) == facts(FAMILY.decode(batch, ref, model.config))


def test_documents_without_entities_or_labels(tokenizer):
    """Unlabelled documents, a document without entities and a sentence with one span: no relations, no failure."""
    model, feat = make(tokenizer)
    lone = Document("one", [["alice", "works", "."]], [[Mention(0, 0, 1, "PER", "alice")]], None)
    empty = Document("none", [["the", "city", "."]], [], None)
    unlabelled = Document("u", hand_doc().sents, hand_doc().entities, None)
    f = feat([lone, empty, unlabelled])
    assert [len(x.instances) for x in f] == [1, 0, 5] and all(x.labels is None for x in f[2].instances) and not f[2].dummies
    preds = predict_documents(model, feat, [lone, empty, unlabelled])
    assert preds[0] == [] and preds[1] == [] and len(preds) == 3
    assert predict_documents(model, feat, [empty]) == [[]]
