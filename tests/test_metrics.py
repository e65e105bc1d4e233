from docunet.documents import Document, Mention, Relation
from docunet.metrics import binary_scores, docred_scores, score_facts, score_relations, train_facts


def doc(title, names, relations):
    ents = [[Mention(0, i, i + 1, "PER", n) for n in ns] for i, ns in enumerate(names)]
    return Document(title, [["w"] * 10], ents, [Relation(h, t, r) for h, t, r in relations])


def test_docred_scores_by_hand():
    gold = [doc("A", [["x"], ["y", "yy"], ["z"]], [(0, 1, "P1"), (1, 2, "P2"), (0, 2, "P3")]),
            doc("B", [["u"], ["v"]], [(0, 1, "P1")])]
    train = [doc("T", [["yy"], ["z"]], [(0, 1, "P2")])]  # (yy, z, P2) is a training fact
    preds = [("A", 0, 1, "P1"), ("A", 1, 2, "P2"), ("A", 1, 2, "P2"), ("A", 2, 0, "P3"), ("B", 0, 1, "P1"), ("C", 0, 1, "P1")]
    s = docred_scores(preds, gold, train_facts(train))
    # 5 unique predictions, 3 correct, 4 gold; one correct fact is in train
    assert (s.num_predicted, s.num_correct, s.num_gold) == (5, 3, 4)
    assert abs(s.precision - 0.6) < 1e-9 and abs(s.recall - 0.75) < 1e-9
    assert abs(s.f1 - 2 * 0.6 * 0.75 / 1.35) < 1e-9
    p_ign = 2 / (4 + 1e-5)
    assert abs(s.ign_f1 - 2 * p_ign * 0.75 / (p_ign + 0.75)) < 1e-9
    assert docred_scores([], gold).f1 == 0.0


def test_binary_scores_only_candidates():
    d = Document("D", [["w"] * 5], [[Mention(0, i, i + 1, "C")] for i in range(3)], [Relation(0, 1, "CID")],
                 candidate_pairs=[(0, 1), (0, 2)])
    s = binary_scores([("D", 0, 1, "CID"), ("D", 0, 2, "CID"), ("D", 2, 1, "CID")], [d])
    assert (s.num_predicted, s.num_correct) == (2, 1) and abs(s.f1 - 2 / 3) < 1e-9


def test_one_scoring_entry_point_picks_binary_for_candidate_pairs():
    """score_facts: DocRED scores for DocRED-style documents, binary scores for CDR/GDA-style ones
    (which name their candidate pairs); score_relations does the same from per-document predictions."""
    from docunet.documents import PredictedRelation

    docred = [doc("A", [["x"], ["y"], ["z"]], [(0, 1, "P1")])]
    preds = [("A", 0, 1, "P1"), ("A", 1, 2, "P1")]
    assert score_facts(preds, docred) == docred_scores(preds, docred)
    cdr = [doc("C", [["a"], ["b"], ["c"]], [(0, 1, "CID")])]
    cdr[0].candidate_pairs = [(0, 1), (0, 2)]
    cdr_preds = [("C", 0, 1, "CID"), ("C", 1, 2, "CID")]  # (1, 2) is not a candidate: not counted
    binary = score_facts(cdr_preds, cdr)
    assert binary == binary_scores(cdr_preds, cdr) and binary.num_predicted == 1 and binary.f1 == 1.0
    assert binary != docred_scores(cdr_preds, cdr)
    rels = [[PredictedRelation(0, 1, "CID", 1.0), PredictedRelation(1, 2, "CID", 0.5)]]
    assert score_relations(cdr, rels) == binary
