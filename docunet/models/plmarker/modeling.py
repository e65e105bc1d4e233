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

    def forward(self, batch) -> torch.Tensor:
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
