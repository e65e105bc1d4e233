import math

import torch

from docunet.models.docunet.losses import adaptive_threshold_loss, balanced_loss, decode


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
