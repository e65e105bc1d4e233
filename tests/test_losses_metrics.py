import math

import torch

from docunet.documents import Document, Mention, Relation
from docunet.losses import adaptive_threshold_loss, balanced_loss, decode
from docunet.metrics import binary_scores, docred_scores, train_facts


def test_balanced_loss_by_hand():
    logits = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 2.0, 3.0]], requires_grad=True)
    labels = torch.tensor([[1, 0, 0], [0, 1, 1]], dtype=torch.bool)
    # pair 0: positives {0}, negatives {1, 2}; pair 1: positives {1, 2}, negatives {0}
    l0 = math.log(1 + math.exp(-2.0) + math.exp(0.5)) + math.log(1 + math.exp(-1.0))
    l1 = math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(-2.0) + math.exp(-3.0))
    loss = balanced_loss(logits, labels)
    assert abs(loss.item() - (l0 + l1) / 2) < 1e-6
    loss.backward()
    g = logits.grad
    assert g[0, 0] < 0 and g[0, 1] > 0 and g[0, 2] > 0 and g[1, 0] > 0 and g[1, 1] < 0  # pushes the right way


def test_adaptive_threshold_loss_by_hand():
    logits = torch.tensor([[0.0, 1.0, -1.0]], requires_grad=True)
    labels = torch.tensor([[0, 1, 0]], dtype=torch.bool)
    # positive part: -log softmax over {TH, 1} at 1; negative part: -log softmax over {TH, 2} at TH
    expect = -math.log(math.exp(1) / (1 + math.exp(1))) - math.log(1 / (1 + math.exp(-1)))
    loss = adaptive_threshold_loss(logits, labels)
    assert abs(loss.item() - expect) < 1e-6
    loss.backward()
    assert logits.grad[0, 1] < 0 and logits.grad[0, 2] > 0


def test_decode_threshold_topk_and_na():
    logits = torch.tensor([[0.5, 2.0, 1.0, 0.7, -1.0], [1.0, -0.5, -2.0, -1.0, -3.0], [-1.0, 0.2, 3.0, 0.1, 0.3]])
    out = decode(logits, "balanced", 0.0, top_k=0)
    assert out.tolist() == [[False, True, True, True, False], [True, False, False, False, False], [False, True, True, True, True]]
    out = decode(logits, "balanced", 0.0, top_k=2)  # class 0 competes for a slot
    assert out.tolist() == [[False, True, True, False, False], [True, False, False, False, False], [False, False, True, False, True]]
    out = decode(logits, "adaptive", 0.0, top_k=0)  # above the threshold class's logit
    assert out.tolist() == [[False, True, True, True, False], [True, False, False, False, False], [False, True, True, True, True]]


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
