"""PL-Marker span NER on a stock transformers encoder (no fork): explicit position ids and a [N, T, T] mask.

The encoder and the span classifier have tensor-only signatures: they become the two exported graphs.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import PLMarkerNERConfig


class MarkerEncoder(nn.Module):
    """A BERT-family transformer fed explicit position ids and a [N, T, T] 0/1 attention mask.

    transformers takes a [N, 1, T, T] mask as it is; as an additive float mask it means the same under
    eager attention (the exported form) and sdpa, so the model and its graph agree."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        additive = (1.0 - attention_mask[:, None].to(torch.float32)) * torch.finfo(torch.float32).min
        out = self.transformer(input_ids=input_ids.long(), position_ids=position_ids.long(), attention_mask=additive)
        return out.last_hidden_state


def text_once_states(transformer: nn.Module, batch) -> torch.Tensor:
    """The encoder's output for a packed batch, computed as text once plus markers against the text's cached
    keys and values, equal to the dense [N, T, T] pass (text never attends to markers, so a window's text
    states are the same for every group).

    The text runs through the stock encoder alone; then each layer's marker states attend to that layer's
    text keys and values (from the text's layer input), to themselves and to their partner, with the layer's
    own query/key/value, output, intermediate and output modules. Attention over markers costs 2K x (L + 2)
    instead of (L + 2K)^2, and text rows never pay for markers. BERT-family encoders (eval mode)."""
    K = batch.start_index.shape[1]
    L = batch.input_ids.shape[1] - 2 * K
    text_valid = batch.attention_mask[:, 0, :L] > 0  # row 0 ([CLS]) sees exactly the window's real text
    text = transformer(input_ids=batch.input_ids[:, :L].long(), position_ids=batch.position_ids[:, :L].long(),
                       attention_mask=text_valid.long(), output_hidden_states=True)
    m = transformer.embeddings(input_ids=batch.input_ids[:, L:].long(), position_ids=batch.position_ids[:, L:].long(),
                               token_type_ids=torch.zeros_like(batch.input_ids[:, L:]).long())
    N, M, d = m.shape
    partner = torch.cat([torch.arange(K, 2 * K), torch.arange(0, K)]).to(m.device)  # start j <-> end j
    neg = torch.finfo(torch.float32).min
    for layer, h in zip(transformer.encoder.layer, text.hidden_states[:-1]):
        att = layer.attention.self
        H, dh = att.num_attention_heads, att.attention_head_size

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], x.shape[1], H, dh).transpose(1, 2)  # [N, H, n, dh]

        q, k_m, v_m = heads(att.query(m)), heads(att.key(m)), heads(att.value(m))
        k_t, v_t = heads(att.key(h)), heads(att.value(h))
        scale = getattr(att, "scaling", dh ** -0.5)
        s_text = (q @ k_t.transpose(-1, -2)) * scale  # [N, H, M, L]
        s_text = s_text.masked_fill(~text_valid[:, None, None, :], neg)
        s_self = (q * k_m).sum(-1, keepdim=True) * scale  # [N, H, M, 1]
        s_partner = (q * k_m[:, :, partner]).sum(-1, keepdim=True) * scale
        p = torch.cat([s_text, s_self, s_partner], -1).softmax(-1)
        ctx = p[..., :L] @ v_t + p[..., L:L + 1] * v_m + p[..., L + 1:] * v_m[:, :, partner]  # [N, H, M, dh]
        ctx = ctx.transpose(1, 2).reshape(N, M, H * dh)
        attended = layer.attention.output(ctx, m)
        m = layer.output(layer.intermediate(attended), attended)
    return torch.cat([text.last_hidden_state, m], dim=1)


class SpanClassifier(nn.Module):
    """[start marker; end marker; first word piece; last word piece] -> types + "none" (the original's features)."""

    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(4 * hidden, num_labels)

    def forward(self, states: torch.Tensor, start_index: torch.Tensor, end_index: torch.Tensor, text_start: torch.Tensor,
                text_end: torch.Tensor) -> torch.Tensor:
        # states [N, T, d]; every index [N, K] -> logits [N, K, C]
        d = states.shape[-1]

        def take(index: torch.Tensor) -> torch.Tensor:
            return torch.gather(states, 1, index.long()[:, :, None].expand(-1, -1, d))

        features = torch.cat([take(start_index), take(end_index), take(text_start), take(text_end)], dim=-1)
        return self.out(self.dropout(features))


class PLMarkerNER(nn.Module):
    def __init__(self, config: PLMarkerNERConfig, transformer: nn.Module):
        super().__init__()
        self.config = config
        self.encoder = MarkerEncoder(transformer)
        self.classifier = SpanClassifier(config.hidden_size, config.num_labels, config.dropout)

    def forward(self, batch, text_once: bool = False) -> torch.Tensor:
        if text_once:
            states = text_once_states(self.encoder.transformer, batch)
        else:
            states = self.encoder(batch.input_ids, batch.position_ids, batch.attention_mask)
        return self.classifier(states, batch.start_index, batch.end_index, batch.text_start, batch.text_end)


def init_markers_from_words(transformer: nn.Module, tokenizer, start_id: int, end_id: int) -> None:
    """The original's `lminit`: the start marker's embedding starts as [MASK]'s, the end marker's as "entity"'s."""
    emb = transformer.get_input_embeddings().weight
    entity = tokenizer("entity", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        if tokenizer.mask_token_id is not None and start_id != tokenizer.mask_token_id:
            emb[start_id] = emb[tokenizer.mask_token_id]
        if len(entity) == 1 and end_id != tokenizer.mask_token_id:
            emb[end_id] = emb[entity[0]]
