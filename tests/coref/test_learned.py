"""Learned pairwise coreference: features by hand, a tiny model on synthetic documents, save/load,
the clustering contract. Needs neither ../shared/data nor MiniLM."""
import random

import numpy as np
import pytest
import torch

from docunet.coref import cluster_mentions
from docunet.coref.learned import CorefExample, LearnedCoref, agglomerate, encode_mentions
from docunet.coref.pair_features import FEATURE_NAMES, STRING_FEATURES, _Info, bucket, edit_distance, pair_features, string_features
from docunet.documents import Mention, PredictedSpan
from tests.conftest import tiny_transformer

torch.set_num_threads(1)


def mentions(*items):
    """(text, type) pairs, one per sentence, in order."""
    return [Mention(i, 0, len(text.split()), etype, text) for i, (text, etype) in enumerate(items)]


def features(a, b, ta="ORG", tb="ORG"):
    """The named features that are on (non-zero) for one pair of mentions in consecutive sentences."""
    _, f = pair_features(mentions((a, ta), (b, tb)))
    assert f.shape == (1, len(FEATURE_NAMES))
    return {n: float(v) for n, v in zip(FEATURE_NAMES, f[0]) if v}


def test_exact_match():
    f = features("Paris", "Paris", "LOC", "LOC")
    for name in ("exact", "casefold", "normalised", "same_first", "same_last", "edit_0", "same_type",
                 "types_LOC_LOC", "sent_1", "rule_same"):
        assert f[name] == 1.0, name
    assert f["jaccard"] == 1.0 and f["length_ratio"] == 1.0 and "edit_norm" not in f
    g = features("The Paris", "paris", "LOC", "LOC")
    assert "exact" not in g and "casefold" not in g and g["normalised"] == 1.0
    assert "same_type" not in features("Paris", "Paris", "LOC", "PER")


def test_acronym():
    f = features("United Nations", "U.N.")
    assert f["acronym"] == 1.0 and f["rule_same"] == 1.0
    assert features("U.N.", "United Nations")["acronym"] == 1.0  # either order
    assert "acronym" not in features("United Nations", "UK")
    # the feature does not depend on type, the rule does
    g = features("United Nations", "UN", "PER", "PER")
    assert g["acronym"] == 1.0 and "rule_same" not in g


def test_person_names():
    f = features("John Smith", "Smith", "PER", "PER")
    assert f["per_last_name"] == 1.0 and f["word_is_last"] == 1.0 and f["suffix_subset"] == 1.0
    assert "per_first_name" not in f and f["rule_same"] == 1.0
    g = features("John Smith", "John", "PER", "PER")
    assert g["per_first_name"] == 1.0 and g["prefix_subset"] == 1.0 and "per_last_name" not in g
    h = features("John Smith", "Smith", "ORG", "ORG")  # not people: the word feature stays, the name one goes
    assert h["word_is_last"] == 1.0 and "per_last_name" not in h
    assert "per_last_name" not in features("John Smith", "Smith", "PER", "ORG")


def test_edit_distance_buckets():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert [bucket(d) for d in (0, 1, 2, 3, 4, 5, 8, 9, 40)] == [0, 1, 2, 3, 3, 4, 4, 5, 5]
    assert features("Oslo", "Osl")["edit_1"] == 1.0
    f = features("kitten", "sitting")
    assert f["edit_3-4"] == 1.0 and f["edit_norm"] == pytest.approx(3 / 7)
    assert f["length_ratio"] == pytest.approx(6 / 7)
    assert features("Ecuador", "Ecuadorian", "LOC", "LOC")["char_prefix"] == 1.0


def test_string_features_are_symmetric():
    words = ["United Nations", "U.N.", "John Smith", "Smith", "the Beatles", "Beatles", "Ecuadorian", "Ecuador", "x"]
    for a in words:
        for b in words:
            assert string_features(_Info.of(a), _Info.of(b)) == string_features(_Info.of(b), _Info.of(a))
            assert len(string_features(_Info.of(a), _Info.of(b))) == len(STRING_FEATURES)


def test_type_pair_and_sentence_distance():
    ms = [Mention(0, 0, 1, "PER", "a"), Mention(0, 2, 3, "ORG", "b"), Mention(7, 0, 1, "XYZ", "c"), Mention(0, 0, 3, "ORG", "a x b")]
    pairs, f = pair_features(ms)
    on = {tuple(p): {n for n, v in zip(FEATURE_NAMES, row) if v} for p, row in zip(pairs.tolist(), f)}
    assert "types_PER_ORG" in on[(0, 1)] and "sent_0" in on[(0, 1)] and "overlap" not in on[(0, 1)]
    assert "types_other" in on[(0, 2)] and "sent_5-8" in on[(0, 2)]
    assert "overlap" in on[(0, 3)] and "overlap" in on[(1, 3)]
    assert pairs.tolist() == [[i, j] for i in range(4) for j in range(i + 1, 4)]


SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "vos", "pel", "dar", "ni", "zor", "quin", "bel", "ha", "gru", "sef"]


def name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.sample(SYLLABLES, parts)).capitalize()


def synthetic_example(rng: random.Random) -> CorefExample:
    """Entities a learner can get right from strings alone, where the rules miss one kind:
    people ("Ada Kalo", later "Kalo"), places with their demonym ("Vosren" ~ "Vosrenian", which the
    rules never merge), and distractors (every other mention is a separate entity)."""
    items: list[tuple[str, str, int]] = []  # text, type, entity
    used: set[str] = set()

    def fresh(parts: int = 2) -> str:
        while (w := name(rng, parts)) in used or any(w.startswith(u) or u.startswith(w) for u in used):
            pass
        used.add(w)
        return w

    entity = 0
    for _ in range(2):
        first, last = fresh(), fresh()
        items += [(f"{first} {last}", "PER", entity), (last, "PER", entity)]
        entity += 1
    for _ in range(2):
        place = fresh()
        items += [(place, "LOC", entity), (place + "ian", "LOC", entity)]
        entity += 1
    for etype in ("LOC", "ORG", "PER", "MISC"):
        items.append((fresh(3), etype, entity))
        entity += 1
    ms = [Mention(i, 0, len(t.split()), etype, t) for i, (t, etype, _) in enumerate(items)]
    return CorefExample(ms, [e for _, _, e in items])


@pytest.fixture(scope="module")
def trained() -> LearnedCoref:
    rng = random.Random(0)
    model = LearnedCoref.train([synthetic_example(rng) for _ in range(30)], hidden=8, epochs=40, lr=1e-2, seed=0)
    model.tune([synthetic_example(rng) for _ in range(10)])
    return model


def test_tiny_model_clusters_hand_made_cases(trained):
    ms = mentions(("Lisa Brennan", "PER"), ("Norland", "LOC"), ("Brennan", "PER"), ("Norlandian", "LOC"),
                  ("Oslo", "LOC"), ("Karlsson", "PER"), ("Acme", "ORG"))
    expected = [[0, 2], [1, 3], [4], [5], [6]]
    assert trained.cluster(ms) == expected
    assert cluster_mentions(ms) == [[0, 2], [1], [3], [4], [5], [6]]  # the rules miss the demonym
    p = trained.pair_probabilities(ms)
    assert p[1, 3] > 0.5 and p[0, 2] > 0.5 and p[1, 4] < 0.5 and p[0, 5] < 0.5
    assert np.array_equal(p, p.T) and np.all(np.diag(p) == 1)


def test_training_is_deterministic():
    rng = random.Random(1)
    examples = [synthetic_example(rng) for _ in range(5)]
    a = LearnedCoref.train(examples, hidden=4, epochs=2, seed=3).net.state_dict()
    b = LearnedCoref.train(examples, hidden=4, epochs=2, seed=3).net.state_dict()
    c = LearnedCoref.train(examples, hidden=4, epochs=2, seed=4).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_negative_downsampling_keeps_every_positive():
    rng = random.Random(2)
    examples = [synthetic_example(rng) for _ in range(5)]
    model = LearnedCoref.train(examples, hidden=0, epochs=1, negatives_per_positive=1.0)
    assert model.pair_probabilities(examples[0].mentions).shape == (len(examples[0].mentions),) * 2


def test_save_load_round_trip(trained, tmp_path):
    trained.save(tmp_path / "coref.json")
    loaded = LearnedCoref.load(tmp_path / "coref.json")
    assert (loaded.threshold, loaded.linkage) == (trained.threshold, trained.linkage)
    ms = synthetic_example(random.Random(7)).mentions
    assert np.array_equal(loaded.pair_probabilities(ms), trained.pair_probabilities(ms))
    assert loaded.cluster(ms) == trained.cluster(ms)


def test_vectors_model_round_trip_and_needs_vectors(tmp_path):
    rng, vrng = random.Random(3), np.random.default_rng(0)
    examples = [synthetic_example(rng) for _ in range(4)]
    for ex in examples:
        ex.vectors = vrng.normal(size=(len(ex.mentions), 6)).astype(np.float32)
    model = LearnedCoref.train(examples, use_vectors=True, hidden=4, epochs=2)
    assert model.uses_vectors
    model.save(tmp_path / "v.json")
    loaded = LearnedCoref.load(tmp_path / "v.json")
    ex = examples[0]
    assert np.array_equal(loaded.pair_probabilities(ex.mentions, vectors=ex.vectors),
                          model.pair_probabilities(ex.mentions, vectors=ex.vectors))
    with pytest.raises(ValueError):
        model.cluster(ex.mentions)
    with pytest.raises(ValueError):
        LearnedCoref.train([CorefExample(ex.mentions, ex.entity_ids)], use_vectors=True)


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError):
        LearnedCoref.load(tmp_path / "x.json")


def test_complete_and_average_linkage():
    p = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.9], [0.2, 0.9, 1.0]])
    complete = agglomerate(p, 0.5, "complete")
    assert complete[0] == complete[1] != complete[2]  # 0 and 2 would be a pair below 0.5
    assert len(set(agglomerate(p, 0.5, "average"))) == 1  # mean distance 0.45 <= 0.5
    assert len(set(agglomerate(p, 0.95, "complete"))) == 3
    assert agglomerate(np.ones((1, 1)), 0.5) == [0]


def test_empty_and_single_input(trained):
    assert trained.cluster([]) == []
    assert trained.cluster(mentions(("Paris", "LOC"))) == [[0]]
    assert trained.pair_probabilities([]).shape == (0, 0)


def test_every_mention_in_exactly_one_cluster(trained):
    rng = random.Random(0)
    pool = ["John Smith", "Smith", "John", "United Nations", "UN", "Paris", "the Paris", "Norland", "Norlandian", "Oslo"]
    items = [PredictedSpan(rng.randrange(5), s, s + 2, rng.choice(["PER", "ORG", "LOC"]), 0.9, rng.choice(pool))
             for s in range(0, 120, 3)]
    rng.shuffle(items)
    clusters = trained.cluster(items)
    assert sorted(i for c in clusters for i in c) == list(range(len(items)))
    pos = [(m.sent_id, m.start, m.end) for m in items]
    for c in clusters:
        assert [pos[i] for i in c] == sorted(pos[i] for i in c)
    assert [pos[c[0]] for c in clusters] == sorted(pos[c[0]] for c in clusters)


def test_mention_text_from_sentences(trained):
    sents = [["Lisa", "Brennan", "met", "Karlsson", "."], ["Brennan", "left", "."]]
    spans = [PredictedSpan(1, 0, 1, "PER", 0.9), PredictedSpan(0, 0, 2, "PER", 0.8), PredictedSpan(0, 3, 4, "PER", 0.7)]
    assert trained.cluster(spans, sents=sents) == [[1, 0], [2]]


def test_encode_mentions_windows(tokenizer):
    model = tiny_transformer(tokenizer).eval()
    sents = [["alice", "works", "for", "acme", "."], ["bob", "lives", "in", "paris", "and", "unknown", "."]]
    ms = [Mention(0, 0, 1, "PER"), Mention(0, 3, 4, "ORG"), Mention(1, 3, 6, "LOC")]
    whole = encode_mentions(sents, ms, tokenizer, model)
    assert whole.shape == (3, model.config.hidden_size) and np.all(np.abs(whole).sum(1) > 0)
    words = [w for s in sents for w in s]
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**enc).last_hidden_state[0].numpy()
    pieces = [p for p, w in enumerate(enc.word_ids()) if w is not None and 8 <= w < 11]
    assert np.allclose(whole[2], states[pieces].mean(0), atol=1e-5)
    windowed = encode_mentions(sents, ms, tokenizer, model, max_pieces=6)  # several windows
    assert windowed.shape == whole.shape and np.all(np.abs(windowed).sum(1) > 0)
    assert not np.allclose(windowed, whole)
