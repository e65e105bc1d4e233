"""DocuNet: relation extraction as semantic segmentation of an entity-by-entity matrix.

Read top to bottom: the encoder (windows -> token states + last-layer attention rows at mention
markers), window merging and entity pooling (batched scatter/gather, shared with the runtime), and
the head that ties the feature map, the U-shaped segmentation module and the pair classifier
(layers.py) together. The encoder and the head have tensor-only signatures: they become the two exported
graphs. Shapes: W windows of T tokens, B documents of L tokens, M mentions, E entities, grid N,
H heads, d hidden size, R relations.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...timing import NULL_TIMER
from .batching import Batch
from .config import DocuNetConfig
from .layers import CellFeedForward, ContextFeatureMap, PairClassifier, SimilarityFeatureMap, UNet

NEG = -1e4  # logit for grid cells that are not pairs (representable in fp16)


# ----------------------------------------------------------------------------------------------
# Encoder: windows -> token states and the last layer's attention rows at the query positions
# ----------------------------------------------------------------------------------------------
class DocuNetEncoder(nn.Module):
    """Wraps a BERT-family transformer. Every layer keeps its fused attention; the last layer's
    attention probabilities are recomputed only for the query rows (mention start markers) from
    that layer's input with its own query/key projections, which is exact."""

    def __init__(self, transformer: nn.Module, all_layer_attentions: bool = False):
        """`all_layer_attentions=True` asks every layer for its probabilities instead (the original
        code's way, which needs eager attention): the slow reference that benchmarks compare with."""
        super().__init__()
        self.transformer = transformer
        cfg = transformer.config
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        layers = getattr(getattr(transformer, "encoder", None), "layer", None)
        attn = getattr(getattr(layers[-1], "attention", None), "self", None) if layers is not None else None
        usable = attn is not None and hasattr(attn, "query") and hasattr(attn, "key") and not all_layer_attentions
        self._last_self_attention = attn if usable else None
        if self._last_self_attention is None:
            transformer.config._attn_implementation = "eager"  # sdpa returns no probabilities

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, query_pos: torch.Tensor):
        # input_ids, attention_mask: [W, T] (int32 or int64); query_pos: [W, Q]
        ids, mask = input_ids.long(), attention_mask.long()
        if self._last_self_attention is None:  # other architectures: ask the model for probabilities
            out = self.transformer(input_ids=ids, attention_mask=mask, output_attentions=True)
            probs = out.attentions[-1]  # [W, H, T, T]
            idx = query_pos[:, None, :, None].expand(-1, probs.shape[1], -1, probs.shape[3])
            return out.last_hidden_state, torch.gather(probs, 2, idx).float()
        out = self.transformer(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        states = out.last_hidden_state  # [W, T, d]
        layer_in = out.hidden_states[-2]  # input of the last layer, [W, T, d]
        W, T, _ = layer_in.shape
        attn = self._last_self_attention
        q_in = torch.gather(layer_in, 1, query_pos[:, :, None].expand(-1, -1, layer_in.shape[-1]))  # [W, Q, d]
        q = attn.query(q_in).view(W, -1, self.num_heads, self.head_dim).transpose(1, 2)  # [W, H, Q, dh]
        k = attn.key(layer_in).view(W, T, self.num_heads, self.head_dim).transpose(1, 2)  # [W, H, T, dh]
        scale = getattr(attn, "scaling", 1.0 / math.sqrt(self.head_dim))
        with torch.autocast(q.device.type, enabled=False):  # probabilities in fp32
            scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale  # [W, H, Q, T]
            scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(torch.float32).min)
            return states, scores.softmax(-1)


# ----------------------------------------------------------------------------------------------
# Window merging and entity pooling (host side of the runtime; batched scatter/gather, no loops)
# ----------------------------------------------------------------------------------------------
def merge_windows(states: torch.Tensor, query_attn: torch.Tensor, batch: Batch, general: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Window outputs -> document token states [B, L, d] and mention attention rows [B, M, H, L].

    Token states are averaged where windows overlap; a mention's attention rows from every window
    that holds it are placed at document positions (artificial window tokens dropped), summed and
    renormalised, as the original does for its two windows. One-window documents pass unchanged
    (a batch of only such documents takes a shortcut with the same result; `general` turns it off).
    """
    W, T, d = states.shape
    H = query_attn.shape[1]
    B, M = batch.mention_pos.shape
    L = int(batch.doc_len.max())
    dev = states.device
    if W == B and not general and bool((batch.doc_windows == 1).all()):
        # every document is one window: window b is document b and query q is mention q
        token_states = states * batch.attention_mask[:, :, None].to(states.dtype)
        mention_attn = query_attn.permute(0, 2, 1, 3) * (batch.query_mention >= 0)[:, :, None, None].to(query_attn.dtype)
        return token_states, mention_attn
    j = torch.arange(T, device=dev)
    doc_pos = j[None, :] + batch.window_shift[:, None]  # [W, T]
    inside = (j[None, :] >= batch.window_lo[:, None]) & (j[None, :] < batch.window_hi[:, None])
    flat = torch.where(inside, batch.window_doc[:, None] * L + doc_pos, torch.full_like(doc_pos, B * L))
    summed = states.new_zeros(B * L + 1, d).index_add_(0, flat.reshape(-1), states.reshape(-1, d))
    count = states.new_zeros(B * L + 1).index_add_(0, flat.reshape(-1), inside.reshape(-1).to(states.dtype))
    token_states = (summed[:-1] / count[:-1].clamp(min=1)[:, None]).view(B, L, d)

    rows = torch.where(batch.query_mention >= 0, batch.query_mention, torch.full_like(batch.query_mention, B * M))
    cols = torch.where(inside, doc_pos, torch.full_like(doc_pos, L))  # [W, T]
    target = rows[:, :, None] * (L + 1) + cols[:, None, :]  # [W, Q, T]
    src = query_attn.permute(0, 2, 3, 1).reshape(-1, H)  # [W*Q*T, H]
    acc = query_attn.new_zeros((B * M + 1) * (L + 1), H).index_add_(0, target.reshape(-1), src)
    mention_attn = acc.view(B * M + 1, L + 1, H)[: B * M, :L].view(B, M, L, H).permute(0, 1, 3, 2)  # [B, M, H, L]
    multi = (batch.doc_windows > 1)[:, None, None, None]
    renorm = mention_attn / (mention_attn.sum(-1, keepdim=True) + 1e-10)
    return token_states, torch.where(multi, renorm, mention_attn)


def pool_entities(token_states: torch.Tensor, mention_attn: torch.Tensor, mention_pos: torch.Tensor,
                  mention_entity: torch.Tensor, num_entities: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mentions -> entities: logsumexp of start-marker states [B, E, d], mean of attention rows [B, E, H, L].

    `mention_entity` is -1 for padded mentions. An entity with one mention gets its marker state
    exactly; entities without mentions (padding) get zeros.
    """
    B, L, d = token_states.shape
    E = num_entities
    x = torch.gather(token_states, 1, mention_pos[:, :, None].expand(-1, -1, d))  # [B, M, d]
    ent = torch.where(mention_entity >= 0, mention_entity, torch.full_like(mention_entity, E))  # [B, M], E = dummy
    idx = ent[:, :, None].expand(-1, -1, d)
    peak = x.new_full((B, E + 1, d), float("-inf")).scatter_reduce(1, idx, x.detach(), "amax", include_self=True)
    peak = torch.where(torch.isinf(peak), torch.zeros_like(peak), peak)
    expsum = x.new_zeros(B, E + 1, d).scatter_add(1, idx, torch.exp(x - torch.gather(peak, 1, idx)))
    count = x.new_zeros(B, E + 1).scatter_add(1, ent, torch.ones_like(ent, dtype=x.dtype))[:, :E]  # [B, E]
    has = (count > 0)[:, :, None]
    entity_emb = torch.where(has, peak[:, :E] + torch.log(expsum[:, :E].clamp(min=1e-30)), torch.zeros_like(peak[:, :E]))
    _, M, H, _ = mention_attn.shape
    flat = (torch.arange(B, device=x.device)[:, None] * (E + 1) + ent).reshape(-1)
    attn_sum = mention_attn.new_zeros(B * (E + 1), H, L).index_add_(0, flat, mention_attn.reshape(B * M, H, L))
    entity_attn = attn_sum.view(B, E + 1, H, L)[:, :E] / count.clamp(min=1)[:, :, None, None].to(mention_attn.dtype)
    return entity_emb, entity_attn


def pad_entities(entity_emb: torch.Tensor, entity_attn: torch.Tensor, num_entities: torch.Tensor, grid: int):
    """Pad (or cut) the entity axis to the grid size N and build the entity mask [B, N]."""
    E = entity_emb.shape[1]
    if E < grid:
        entity_emb = F.pad(entity_emb, (0, 0, 0, grid - E))
        entity_attn = F.pad(entity_attn, (0, 0, 0, 0, 0, grid - E))
    else:
        entity_emb, entity_attn = entity_emb[:, :grid], entity_attn[:, :grid]
    mask = torch.arange(grid, device=entity_emb.device)[None, :] < num_entities[:, None]
    return entity_emb, entity_attn, mask


# ----------------------------------------------------------------------------------------------
# Head: (token states, entity vectors, entity attention, entity mask) -> logits on the N x N grid
# ----------------------------------------------------------------------------------------------
class DocuNetHead(nn.Module):
    def __init__(self, config: DocuNetConfig):
        super().__init__()
        d, c = config.hidden_size, config.unet_in_channels
        fmap_cls = ContextFeatureMap if config.feature_map == "context" else SimilarityFeatureMap
        self.feature_map = fmap_cls(d, c)
        if config.use_unet:
            self.segmentation = UNet(c, config.unet_down_channels, config.unet_out_channels)
        else:
            self.segmentation = CellFeedForward(c, config.unet_out_channels)
        self.classifier = PairClassifier(d, config.unet_out_channels, config.emb_size, config.block_size, config.num_relations)

    def forward(self, token_states: torch.Tensor, entity_emb: torch.Tensor, entity_attn: torch.Tensor,
                entity_mask: torch.Tensor) -> torch.Tensor:
        # token_states [B, L, d]; entity_emb [B, N, d]; entity_attn [B, N, H, L]; entity_mask [B, N] -> [B, N, N, R]
        entity_mask = entity_mask.bool()
        B, N, _ = entity_emb.shape
        cells = self.segmentation(self.feature_map(token_states, entity_emb, entity_attn, entity_mask))  # [B, N, N, c]
        eye = torch.eye(N, dtype=torch.bool, device=entity_emb.device)
        pairs = entity_mask[:, :, None] & entity_mask[:, None, :] & ~eye  # [B, N, N]
        # nonzero on a float copy: identical indices, and the exported NonZero reads FP32, which the
        # TensorRT ONNX parser documents (FP32/FP16 only, no BOOL)
        pair_index = pairs.to(torch.float32).nonzero()  # [P, 3]
        logits_p = self.classifier(entity_emb, cells, pair_index)  # [P, R]
        out = logits_p.new_full((B, N, N, logits_p.shape[-1]), NEG)
        return out.index_put((pair_index[:, 0], pair_index[:, 1], pair_index[:, 2]), logits_p)


# ----------------------------------------------------------------------------------------------
# The whole model
# ----------------------------------------------------------------------------------------------
def run_docunet(batch: Batch, encoder, head, config: DocuNetConfig, timer=NULL_TIMER) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """documents (as a Batch) -> encoder -> window merge -> pooling -> head, for any encoder/head callables.

    The PyTorch model and every runtime backend (ONNX Runtime sessions, TensorRT engines) go
    through this one function, so they cannot drift apart. Returns logits per grid-size group:
    [(doc indices [b], logits [b, N, N, R])]. Each document is padded to its own grid size (42, or
    larger for more entities), so its predictions never depend on the other documents of the batch.
    """
    with timer("encoder"):
        states, query_attn = encoder(batch.input_ids, batch.attention_mask, batch.query_pos)
    with timer("merge_pool"):
        token_states, mention_attn = merge_windows(states, query_attn.to(states.dtype), batch)
        E = int(batch.num_entities.max())
        entity_emb, entity_attn = pool_entities(token_states, mention_attn, batch.mention_pos, batch.mention_entity, E)
    grids = torch.tensor([config.grid_for(int(n)) for n in batch.num_entities.tolist()])
    outputs = []
    for grid in sorted(set(grids.tolist())):
        docs = torch.nonzero(grids == grid)[:, 0].to(token_states.device)
        with timer("merge_pool"):
            emb, att, mask = pad_entities(entity_emb[docs], entity_attn[docs], batch.num_entities[docs], grid)
        with timer("head"):
            outputs.append((docs, head(token_states[docs], emb, att, mask)))
    return outputs


class DocuNet(nn.Module):
    """The trainable model: encoder + head, run through `run_docunet`."""

    def __init__(self, config: DocuNetConfig, transformer: nn.Module):
        super().__init__()
        self.config = config
        self.encoder = DocuNetEncoder(transformer)
        self.head = DocuNetHead(config)

    def forward(self, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return run_docunet(batch, self.encoder, self.head, self.config)
