"""DocuNet's head layers: the two feature maps, the U-shaped segmentation module and the pair classifier.

Shapes: B documents, L tokens, N grid size, C feature-map channels, d hidden size, H heads, P pairs,
R relations. Every layer is tensor-only and traceable (the head becomes one exported graph).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------------------------------
# Feature maps F(e_s, e_o): [B, N, N, C] with C = unet_in_channels, zero outside the entity block
# ----------------------------------------------------------------------------------------------
class ContextFeatureMap(nn.Module):
    """Entity-aware attention: pool token states with the pair's attention product, project to C.

    Linear(A @ X) = A @ (X W^T) + b, so the projection is applied to the token states first (exact,
    and it never builds the [B, N, N, d] tensor).
    """

    def __init__(self, hidden: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(hidden, channels)

    def forward(self, token_states, entity_emb, entity_attn, entity_mask):
        # token_states [B, L, d]; entity_attn [B, N, H, L]; entity_mask [B, N]
        H = entity_attn.shape[2]
        ht = torch.einsum("bihl,bjhl->bijl", entity_attn, entity_attn) / H  # [B, N, N, L]
        norm = ht.sum(-1, keepdim=True) + 1e-5
        x = token_states @ self.proj.weight.t()  # [B, L, C]
        fmap = torch.einsum("bijl,blc->bijc", ht, x) / norm + self.proj.bias  # [B, N, N, C]
        cell = (entity_mask[:, :, None] & entity_mask[:, None, :])[..., None]
        return fmap * cell.to(fmap.dtype)


class SimilarityFeatureMap(nn.Module):
    """Similarity of the two entity vectors: weighted element-wise product, cosine, bilinear (C = 3)."""

    def __init__(self, hidden: int, channels: int):
        super().__init__()
        if channels != 3:
            raise ValueError("the similarity-based feature map has exactly 3 channels")
        self.elementwise = nn.Linear(hidden, 1, bias=False)
        self.bilinear = nn.Parameter(torch.zeros(hidden, hidden))
        nn.init.xavier_uniform_(self.bilinear)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, token_states, entity_emb, entity_attn, entity_mask):
        e = entity_emb  # [B, N, d]
        prod = torch.einsum("bid,bjd,d->bij", e, e, self.elementwise.weight[0])
        unit = F.normalize(e, dim=-1, eps=1e-6)
        cos = unit @ unit.transpose(1, 2)
        bil = (e @ self.bilinear) @ e.transpose(1, 2) * self.scale
        fmap = torch.stack([prod * self.scale, cos, bil], dim=-1)  # [B, N, N, 3]
        cell = (entity_mask[:, :, None] & entity_mask[:, None, :])[..., None]
        return fmap * cell.to(fmap.dtype)


# ----------------------------------------------------------------------------------------------
# U-shaped segmentation module (fully convolutional: any grid size N >= 4)
# ----------------------------------------------------------------------------------------------
class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Upsample x2 (bilinear, align_corners), pad to the skip connection's size, concatenate, convolve."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Channels in -> d -> 2d -> 2d -> d -> d/2 -> out (3 -> 256 -> 512 -> 512 -> 256 -> 128 -> 256 by default)."""

    def __init__(self, cin: int, d: int, cout: int):
        super().__init__()
        self.inc = DoubleConv(cin, d)  # N
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(d, 2 * d))  # N/2
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(2 * d, 2 * d))  # N/4
        self.up1 = Up(4 * d, d)  # N/2
        self.up2 = Up(2 * d, d // 2)  # N
        self.outc = nn.Conv2d(d // 2, cout, 1)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        # fmap [B, N, N, C] -> [B, N, N, cout]
        x1 = self.inc(fmap.permute(0, 3, 1, 2))
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        return self.outc(self.up2(self.up1(x3, x2), x1)).permute(0, 2, 3, 1)


class CellFeedForward(nn.Module):
    """The ablation "w/o U-shaped segmentation": one feed-forward layer per grid cell."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Linear(cin, cout)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.linear(fmap)


# ----------------------------------------------------------------------------------------------
# Pair classifier: tanh extractors + grouped bilinear, only for real pairs
# ----------------------------------------------------------------------------------------------
class PairClassifier(nn.Module):
    """z_s = tanh(W_s [e_s; u_so]), z_o = tanh(W_o [e_o; u_so]); logits = grouped bilinear(z_s, z_o).

    The extractors are split into an entity part (computed once per entity) and a cell part; the
    bilinear runs group by group, never building the P x (emb * block) outer-product tensor.
    """

    def __init__(self, hidden: int, cell: int, emb: int, block: int, num_relations: int):
        super().__init__()
        self.hidden, self.emb, self.block = hidden, emb, block
        self.head_extractor = nn.Linear(hidden + cell, emb)
        self.tail_extractor = nn.Linear(hidden + cell, emb)
        self.bilinear = nn.Linear(emb * block, num_relations)

    def forward(self, entity_emb: torch.Tensor, cells: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
        # entity_emb [B, N, d]; cells [B, N, N, c]; pair_index [P, 3] (b, h, t) -> logits [P, R]
        b, h, t = pair_index[:, 0], pair_index[:, 1], pair_index[:, 2]
        d = self.hidden
        wh, wt = self.head_extractor.weight, self.tail_extractor.weight
        head_ent = entity_emb @ wh[:, :d].t()  # [B, N, emb]
        tail_ent = entity_emb @ wt[:, :d].t()
        u = cells[b, h, t]  # [P, c]
        zs = torch.tanh(head_ent[b, h] + u @ wh[:, d:].t() + self.head_extractor.bias)  # [P, emb]
        zo = torch.tanh(tail_ent[b, t] + u @ wt[:, d:].t() + self.tail_extractor.bias)
        return grouped_bilinear(zs, zo, self.bilinear.weight, self.bilinear.bias, self.emb // self.block)


def _group_outer(zs: torch.Tensor, zo: torch.Tensor, g: int) -> torch.Tensor:
    """Outer product of one group: [P, k] x [P, k] -> [P, k * k]."""
    return (zs[:, g, :, None] * zo[:, g, None, :]).flatten(1)


class _GroupedBilinear(torch.autograd.Function):
    """Training path: the backward recomputes each group's outer product instead of storing all of them."""

    @staticmethod
    def forward(ctx, zs, zo, weight, bias):
        ctx.save_for_backward(zs, zo, weight)
        G, k = zs.shape[1], zs.shape[2]
        w = weight.view(weight.shape[0], G, k * k)
        out = bias.expand(zs.shape[0], -1).clone()
        for g in range(G):
            out.addmm_(_group_outer(zs, zo, g), w[:, g].t())
        return out

    @staticmethod
    def backward(ctx, grad):
        zs, zo, weight = ctx.saved_tensors
        P, G, k = zs.shape
        w = weight.view(weight.shape[0], G, k * k)
        dzs, dzo, dw = torch.empty_like(zs), torch.empty_like(zo), torch.empty_like(w)
        for g in range(G):
            dw[:, g] = grad.t() @ _group_outer(zs, zo, g)
            dbl = (grad @ w[:, g]).view(P, k, k)  # [P, k(a), k(b)]
            dzs[:, g] = torch.bmm(dbl, zo[:, g, :, None])[..., 0]
            dzo[:, g] = torch.bmm(zs[:, g, None, :], dbl)[:, 0]
        return dzs, dzo, dw.view_as(weight), grad.sum(0)


def grouped_bilinear(zs: torch.Tensor, zo: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int) -> torch.Tensor:
    """logits[p, r] = sum_g sum_ab zs[p,g,a] W[r,g,a,b] zo[p,g,b] + bias[r], one group at a time.

    zs, zo: [P, emb]; weight: [R, emb * block] laid out as (group, a, b). At most one group's
    [P, block * block] outer product exists at a time, never the [P, emb * block] tensor.
    """
    P = zs.shape[0]
    zs, zo = zs.reshape(P, groups, -1), zo.reshape(P, groups, -1)
    if torch.is_grad_enabled() and (zs.requires_grad or zo.requires_grad or weight.requires_grad):
        return _GroupedBilinear.apply(zs, zo.to(zs.dtype), weight.to(zs.dtype), bias.to(zs.dtype))
    k = zs.shape[2]
    w = weight.to(zs.dtype).view(weight.shape[0], groups, k * k)
    logits = bias.to(zs.dtype).expand(P, -1)
    for g in range(groups):
        logits = logits + _group_outer(zs, zo, g) @ w[:, g].t()
    return logits
