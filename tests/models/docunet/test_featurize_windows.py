import numpy as np
import pytest
import torch

from docunet.documents import Document, Mention
from docunet.models.docunet.batching import collate_features, plan_windows
from docunet.models.docunet.modeling import merge_windows
from tests.conftest import tiny_model


def doc_with(sents, entities):
    return Document("t", sents, [[Mention(*m) for m in e] for e in entities], None, source="test")


def test_typed_markers_around_every_mention(tokenizer):
    _, feat = tiny_model(tokenizer)
    doc = doc_with([["alice", "works", "for", "acme", "."], ["unknown", "bob", "."]],
                   [[(0, 0, 1, "PER"), (1, 1, 2, "PER")], [(0, 3, 4, "ORG")], [(1, 0, 1, "LOC")]])
    (f,) = feat([doc])
    toks = tokenizer.convert_ids_to_tokens(f.input_ids.tolist())
    assert toks == ["[CLS]", "[unused1]", "alice", "[unused51]", "works", "for", "[unused3]", "acme", "[unused53]", ".",
                    "[unused5]", "un", "##known", "[unused55]", "[unused1]", "bob", "[unused51]", ".", "[SEP]"]
    assert [toks[p] for p in f.mention_pos] == ["[unused1]", "[unused1]", "[unused3]", "[unused5]"]
    assert f.mention_pos.tolist() == [1, 14, 6, 10] and f.mention_entity.tolist() == [0, 0, 1, 2]


def test_asterisk_markers_and_shared_start(tokenizer):
    _, feat = tiny_model(tokenizer, markers="asterisk")
    # two mentions start at the same word: one start marker, both mentions point at it
    doc = doc_with([["the", "company", "acme", "paris", "."]], [[(0, 2, 4, "ORG")], [(0, 2, 3, "ORG")], [(0, 3, 4, "LOC")]])
    (f,) = feat([doc])
    toks = tokenizer.convert_ids_to_tokens(f.input_ids.tolist())
    assert toks == ["[CLS]", "the", "company", "*", "acme", "*", "*", "paris", "*", ".", "[SEP]"]  # shared end marker too
    assert f.mention_pos.tolist() == [3, 3, 6]


def test_unseen_entity_type_gets_the_spare_marker(tokenizer):
    _, feat = tiny_model(tokenizer)
    (f,) = feat([doc_with([["alice", "."]], [[(0, 0, 1, "DISEASE")]])])
    assert tokenizer.convert_ids_to_tokens(int(f.input_ids[1])) == "[unused7]"


@pytest.mark.parametrize("length", [5, 512, 513, 700, 894, 895, 1022, 1023, 1024, 2500, 10000])
def test_windows_cover_every_token_with_overlap(length):
    spans = plan_windows(length, 512, 128)
    covered = np.zeros(length, int)
    for s, e, p, q in spans:
        assert e - s + p + q <= 512 and (p == (s > 0)) and (q == (e < length))
        covered[s:e] += 1
    assert covered.min() >= 1
    if len(spans) > 1:
        for (s0, e0, *_), (s1, e1, *_) in zip(spans, spans[1:]):
            assert e0 - s1 >= 127  # overlap (one token of rounding)


def test_two_windows_are_the_original_layout():
    assert plan_windows(700, 512, 128) == [(0, 511, False, True), (189, 700, True, False)]


def long_doc(n_words):
    sents = [["long", "text", "filler", "word", "."] for _ in range(n_words // 5)]
    ents = [[(0, 0, 1, "PER"), (len(sents) // 2, 1, 2, "PER"), (len(sents) - 1, 2, 3, "PER")], [(len(sents) - 1, 0, 1, "ORG")]]
    return doc_with(sents, ents)


def test_single_window_document_equals_single_pass(tokenizer):
    model, feat = tiny_model(tokenizer)
    doc = long_doc(300)
    (f,) = feat([doc])
    assert f.length <= 512
    batch = collate_features(feat, [f])
    with torch.no_grad():
        states, attn = model.encoder(batch.input_ids, batch.attention_mask, batch.query_pos)
        token_states, mention_attn = merge_windows(states, attn, batch)
        ref = model.encoder.transformer(input_ids=torch.from_numpy(f.input_ids[None]).long(), output_hidden_states=True)
    assert torch.equal(token_states[0], ref.last_hidden_state[0])
    # attention rows equal the model's own eager attention probabilities of the last layer
    eager = type(model.encoder.transformer)(model.encoder.transformer.config, add_pooling_layer=False)
    eager.load_state_dict(model.encoder.transformer.state_dict())
    eager.config._attn_implementation = "eager"
    with torch.no_grad():
        probs = eager(input_ids=torch.from_numpy(f.input_ids[None]).long(), output_attentions=True).attentions[-1][0]
    expect = probs[:, torch.from_numpy(f.mention_pos)].permute(1, 0, 2)  # [M, H, L]
    torch.testing.assert_close(mention_attn[0], expect, atol=2e-6, rtol=0)


def test_long_document_merge_matches_manual_windows(tokenizer):
    model, feat = tiny_model(tokenizer)
    (f,) = feat([long_doc(1500)])
    assert f.length > 1022
    batch = collate_features(feat, [f])
    assert int(batch.doc_windows[0]) >= 3
    with torch.no_grad():
        states, attn = model.encoder(batch.input_ids, batch.attention_mask, batch.query_pos)
        token_states, mention_attn = merge_windows(states, attn, batch)
    L = f.length
    assert token_states.shape[1] == L and not (token_states[0].abs().sum(-1) == 0).any()  # no gap, no truncation
    # manual merge from the same window outputs
    acc, cnt = torch.zeros(L, states.shape[-1]), torch.zeros(L)
    rows = torch.zeros(len(f.mention_pos), attn.shape[1], L)
    for w in range(states.shape[0]):
        lo, hi, shift = int(batch.window_lo[w]), int(batch.window_hi[w]), int(batch.window_shift[w])
        acc[lo + shift : hi + shift] += states[w, lo:hi]
        cnt[lo + shift : hi + shift] += 1
        for q in range(attn.shape[2]):
            m = int(batch.query_mention[w, q])
            if m >= 0:
                rows[m, :, lo + shift : hi + shift] += attn[w, :, q, lo:hi]
    torch.testing.assert_close(token_states[0], acc / cnt[:, None])
    torch.testing.assert_close(mention_attn[0], rows / rows.sum(-1, keepdim=True))
    assert torch.allclose(mention_attn[0].sum(-1), torch.ones(1))


def test_one_window_shortcut_equals_the_general_merge(tokenizer):
    model, feat = tiny_model(tokenizer)
    docs = [long_doc(n) for n in (20, 60, 150)]
    batch = collate_features(feat, feat(docs))
    assert batch.doc_windows.tolist() == [1, 1, 1]
    with torch.no_grad():
        states, attn = model.encoder(batch.input_ids, batch.attention_mask, batch.query_pos)
        fast = merge_windows(states, attn, batch)
        slow = merge_windows(states, attn, batch, general=True)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
