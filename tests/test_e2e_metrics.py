"""JEREX-style end-to-end scores on hand-computed cases."""
import pytest

from docunet.documents import Document, Mention, PredictedRelation, Relation
from docunet.e2e_metrics import e2e_scores, entity_type

SENTS = [["w"] * 10, ["w"] * 10]
M = {  # the gold mentions
    "a1": Mention(0, 0, 2, "PER"), "a2": Mention(1, 0, 1, "PER"),
    "b1": Mention(0, 4, 5, "ORG"), "b2": Mention(1, 3, 4, "ORG"),
    "c1": Mention(0, 7, 8, "LOC"),
}


def doc(entities, relations):
    return Document("D", SENTS, [[M[k] if isinstance(k, str) else k for k in e] for e in entities], relations)


GOLD = doc([["a1", "a2"], ["b1", "b2"], ["c1"]], [Relation(0, 1, "employer"), Relation(1, 2, "located_in")])


def counts(prf):
    return prf.num_predicted, prf.num_gold, prf.num_correct


def test_perfect():
    pred = doc([["c1"], ["b2", "b1"], ["a1", "a2"]], [(2, 1, "employer"), PredictedRelation(1, 0, "located_in", 0.9)])
    s = e2e_scores([GOLD], [pred])
    for prf in (s.mentions, s.entities, s.entities_typed, s.relations, s.relations_strict):
        assert prf.precision == prf.recall == prf.f1 == 1.0
    assert counts(s.mentions) == (5, 5, 5) and counts(s.relations) == (2, 2, 2)


def test_missing_mention_splits_an_entity():
    # a2 is not predicted: mentions 4/5; entity A is wrong, so is every relation with A
    pred = doc([["a1"], ["b1", "b2"], ["c1"]], [Relation(0, 1, "employer"), Relation(1, 2, "located_in")])
    s = e2e_scores([GOLD], [pred])
    assert counts(s.mentions) == (4, 5, 4) and s.mentions.precision == 1.0 and s.mentions.recall == 0.8
    assert counts(s.entities) == (3, 3, 2) and s.entities.f1 == pytest.approx(2 / 3)
    assert counts(s.relations) == (2, 2, 1) and s.relations.f1 == 0.5
    assert counts(s.relations_strict) == (2, 2, 1)


def test_split_entity_with_both_parts_predicted():
    pred = doc([["a1"], ["a2"], ["b1", "b2"], ["c1"]], [])
    s = e2e_scores([GOLD], [pred])
    assert counts(s.mentions) == (5, 5, 5)
    assert counts(s.entities) == (4, 3, 2) and s.entities.precision == 0.5
    assert counts(s.relations) == (0, 2, 0) and s.relations.f1 == 0.0


def test_wrong_type_only_hurts_typed_scores():
    c_as_org = Mention(0, 7, 8, "ORG")
    pred = doc([["a1", "a2"], ["b1", "b2"], [c_as_org]], [Relation(0, 1, "employer"), Relation(1, 2, "located_in")])
    s = e2e_scores([GOLD], [pred])
    assert s.mentions.f1 == s.entities.f1 == s.relations.f1 == 1.0
    assert counts(s.entities_typed) == (3, 3, 2)
    assert counts(s.relations_strict) == (2, 2, 1)


def test_relation_with_wrong_head():
    pred = doc([["a1", "a2"], ["b1", "b2"], ["c1"]], [Relation(2, 1, "employer"), Relation(1, 2, "located_in")])
    s = e2e_scores([GOLD], [pred])
    assert s.entities.f1 == 1.0
    assert counts(s.relations) == (2, 2, 1) and counts(s.relations_strict) == (2, 2, 1)


def test_duplicates_count_once():
    gold = doc([["a1", "a1", "a2"], ["b1", "b2"], ["c1"]], [Relation(0, 1, "employer"), Relation(0, 1, "employer")])
    pred = doc([["a1", "a2", "a2"], ["a2", "a1"], ["b1", "b2", "b1"], ["c1"]],
               [Relation(0, 2, "employer"), Relation(1, 2, "employer"), (0, 2, "employer")])
    s = e2e_scores([gold], [pred])
    assert counts(s.mentions) == (5, 5, 5)
    assert counts(s.entities) == (3, 3, 3)
    assert counts(s.relations) == (1, 1, 1)


def test_documents_are_scored_separately():
    # the same spans in another document do not match
    pred_empty = doc([], [])
    s = e2e_scores([GOLD, GOLD], [GOLD, pred_empty])
    assert counts(s.mentions) == (5, 10, 5) and counts(s.relations) == (2, 4, 2)
    with pytest.raises(ValueError):
        e2e_scores([GOLD], [])


def test_entity_type_majority_then_earliest():
    assert entity_type([Mention(0, 5, 6, "ORG"), Mention(0, 1, 2, "LOC"), Mention(1, 0, 1, "ORG")]) == "ORG"
    assert entity_type([Mention(0, 5, 6, "ORG"), Mention(0, 1, 2, "LOC")]) == "LOC"
    assert entity_type([]) == ""
