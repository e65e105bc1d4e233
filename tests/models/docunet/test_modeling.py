import pytest
import torch

from docunet.models.docunet.batching import collate_features
from docunet.models.docunet.layers import ContextFeatureMap, UNet, grouped_bilinear
from docunet.models.docunet.modeling import DocuNetHead, pad_entities, pool_entities
from tests.conftest import many_entities_document, tiny_model


def test_masked_pooling_logsumexp_and_mean():
    torch.manual_seed(0)
    B, L, d, H = 2, 10, 4, 3
    states = torch.randn(B, L, d)
    attn = torch.rand(B, 5, H, L)
    pos = torch.tensor([[1, 3, 5, 0, 0], [2, 4, 6, 8, 0]])
    ent = torch.tensor([[0, 0, 1, -1, -1], [1, 0, 1, 1, -1]])
    emb, eattn = pool_entities(states, attn, pos, ent, 3)
    torch.testing.assert_close(emb[0, 0], torch.logsumexp(states[0, [1, 3]], 0))
    assert torch.equal(emb[0, 1], states[0, 5])  # one mention: its marker state exactly
    torch.testing.assert_close(emb[1, 1], torch.logsumexp(states[1, [2, 6, 8]], 0))
    assert torch.equal(emb[0, 2], torch.zeros(d)) and torch.equal(eattn[0, 2], torch.zeros(H, L))  # padding entity
    torch.testing.assert_close(eattn[0, 0], attn[0, [0, 1]].mean(0))
    torch.testing.assert_close(eattn[1, 1], attn[1, [0, 2, 3]].mean(0))
    # gradients flow and stay finite with padding
    states.requires_grad_(True)
    emb, _ = pool_entities(states, attn, pos, ent, 3)
    emb.sum().backward()
    assert torch.isfinite(states.grad).all() and states.grad[0, 0].abs().sum() == 0


def test_pad_entities_to_grid():
    emb, att = torch.ones(2, 3, 4), torch.ones(2, 3, 2, 5)
    e, a, m = pad_entities(emb, att, torch.tensor([3, 1]), 42)
    assert e.shape == (2, 42, 4) and a.shape == (2, 42, 2, 5)
    assert m[0].tolist() == [True] * 3 + [False] * 39 and m[1].sum() == 1


def test_grid_sizes_fixed_fitted_and_above_the_grid():
    from docunet.models.docunet.config import DocuNetConfig

    fixed, fit8, fit14 = DocuNetConfig(), DocuNetConfig(grid_fit=8), DocuNetConfig(grid_fit=14)
    assert [fixed.grid_for(n) for n in (2, 42, 43, 56, 57)] == [42, 42, 56, 56, 70]
    assert [fit8.grid_for(n) for n in (2, 8, 9, 40, 41, 42, 43)] == [8, 8, 16, 40, 42, 42, 56]
    assert [fit14.grid_for(n) for n in (2, 15, 29, 60)] == [14, 28, 42, 70]
    with pytest.raises(ValueError):
        DocuNetConfig(grid_fit=-1)


def test_unet_shapes_at_42_and_above():
    net = UNet(3, 8, 16).eval()
    for n in (42, 56, 60, 70, 84, 35, 4):
        assert net(torch.randn(2, n, n, 3)).shape == (2, n, n, 16)
    full = UNet(3, 256, 256).eval()  # the paper's widths: 3 -> 256 -> 512 -> 512 -> 256 -> 128 -> 256
    assert full.up1.conv[0].in_channels == 1024 and full.up2.conv[0].in_channels == 512
    assert full.up2.conv[3].out_channels == 128
    with torch.no_grad():
        assert full(torch.randn(1, 42, 42, 3)).shape == (1, 42, 42, 256)


def test_folded_projection_equals_projecting_pooled_states():
    torch.manual_seed(0)
    fm = ContextFeatureMap(6, 3)
    B, N, H, L = 1, 4, 2, 7
    states, att = torch.randn(B, L, 6), torch.rand(B, N, H, L)
    mask = torch.tensor([[True, True, True, False]])
    out = fm(states, None, att, mask)
    ht = (att[:, :, None] * att[:, None, :]).mean(3)  # [B, N, N, L]
    ht = ht / (ht.sum(-1, keepdim=True) + 1e-5)
    ref = fm.proj(ht @ states[:, None])  # Linear over the pooled d-dim context
    torch.testing.assert_close(out[0, :3, :3], ref[0, :3, :3], atol=1e-5, rtol=1e-5)
    assert torch.equal(out[0, 3], torch.zeros(4, 3)) and torch.equal(out[0, :, 3], torch.zeros(4, 3))


def test_grouped_bilinear_equals_outer_product_and_has_gradients():
    torch.manual_seed(0)
    P, G, k, R = 9, 4, 5, 6
    zs, zo = torch.randn(P, G * k, dtype=torch.float64, requires_grad=True), torch.randn(P, G * k, dtype=torch.float64, requires_grad=True)
    w, b = torch.randn(R, G * k * k, dtype=torch.float64, requires_grad=True), torch.randn(R, dtype=torch.float64, requires_grad=True)
    ref = (zs.view(P, G, k, 1) * zo.view(P, G, 1, k)).reshape(P, -1) @ w.t() + b
    torch.testing.assert_close(grouped_bilinear(zs, zo, w, b, G), ref)
    assert torch.autograd.gradcheck(lambda *a: grouped_bilinear(*a, G), (zs, zo, w, b))


def test_head_scores_only_real_pairs(tokenizer):
    model, _ = tiny_model(tokenizer)
    B, L, d, H, N = 2, 12, 32, 4, 42
    torch.manual_seed(0)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[0, :5], mask[1, :2] = True, True
    with torch.no_grad():
        logits = model.head(torch.randn(B, L, d), torch.randn(B, N, d), torch.rand(B, N, H, L), mask)
    assert logits.shape == (B, N, N, 4)
    real = (logits > -1e4 + 1).all(-1)
    assert real[0].sum() == 5 * 4 and real[1].sum() == 2 and not real[0].diagonal().any()


def test_similarity_map_and_ablation_run(tokenizer):
    for overrides in ({"feature_map": "similarity"}, {"use_unet": False}):
        model, feat = tiny_model(tokenizer, **overrides)
        doc = many_entities_document(5)
        ((docs, logits),) = model(collate_features(feat, feat([doc])))
        assert logits.shape == (1, 42, 42, 4) and torch.isfinite(logits).all()


def test_sixty_entities_neither_crash_nor_drop(tokenizer):
    model, feat = tiny_model(tokenizer)
    big, small = many_entities_document(60, "big"), many_entities_document(3, "small")
    with torch.no_grad():
        groups = model(collate_features(feat, feat([small, big])))
        (alone_docs, alone), = model(collate_features(feat, feat([big])))
    sizes = {int(d[0]): lg.shape[1] for d, lg in groups}
    assert sizes == {0: 42, 1: 70}  # 60 entities -> grid 42 + 2 * 14
    big_logits = [lg for d, lg in groups if int(d[0]) == 1][0]
    real = (big_logits[0] > -1e4 + 1).all(-1)
    assert real.sum() == 60 * 59  # every ordered pair of the 60 entities is scored
    torch.testing.assert_close(big_logits, alone)  # independent of the rest of the batch


def test_head_is_tensor_only_and_traceable(tokenizer):
    model, _ = tiny_model(tokenizer)
    args = (torch.randn(1, 9, 32), torch.randn(1, 42, 32), torch.rand(1, 42, 4, 9), torch.arange(42)[None] < 6)
    with torch.no_grad():
        out = model.head(*args)
    assert isinstance(out, torch.Tensor) and isinstance(model.head, DocuNetHead)
