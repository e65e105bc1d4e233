"""PL-Marker span NER on a stock transformers encoder (no fork).

Two passes compute the same thing. The dense packed pass (the original's; `PLMarkerNER.dense`): text and
levitated markers in one sequence with explicit position ids and a [N, T, T] mask. The text-once pass
(training and serving): text never attends to markers, so `TextGraph` encodes each window's text once
(every layer's states) and `SpanGraph` runs the markers through the same layers against the text's keys
and values (`MarkerPass`, shared with the relation model), each marker seeing the text, itself and its
partner: attention over markers costs 2K x (L + 2) instead of (L + 2K)^2, and text rows never pay for
markers. Both graphs have tensor-only signatures: they are the exported graphs. BERT-family encoders.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import PLMarkerNERConfig
from .featurize import NUM_SHAPES

SHAPE_DIM = 16  # per word-shape embedding; a span has four (first, last, previous, next word)
MASKED_SCORE = -30000.0  # a padding key's attention score: exp() of it is 0 in fp32, bf16 and fp16 (which holds it)


class MarkerEncoder(nn.Module):
    """The dense pass: a BERT-family transformer fed explicit position ids and a [N, T, T] 0/1 mask (as a
    [N, 1, T, T] additive mask, which eager and sdpa attention both take as it is)."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        additive = (1.0 - attention_mask[:, None].to(torch.float32)) * torch.finfo(torch.float32).min
        out = self.transformer(input_ids=input_ids.long(), position_ids=position_ids.long(), attention_mask=additive)
        return out.last_hidden_state


class SpanClassifier(nn.Module):
    """[start marker; end marker; first word piece; last word piece (; word shapes)] -> types + "none"."""

    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1, shape_features: bool = True):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.shape = nn.Embedding(NUM_SHAPES, SHAPE_DIM) if shape_features else None
        self.out = nn.Linear(4 * hidden + (4 * SHAPE_DIM if shape_features else 0), num_labels)

    def forward(self, start: torch.Tensor, end: torch.Tensor, first: torch.Tensor, last: torch.Tensor,
                shape: torch.Tensor) -> torch.Tensor:
        parts = [start, end, first, last]  # each [..., K, d]
        if self.shape is not None:
            parts.append(self.shape(shape.long()).flatten(-2))  # [..., K, 4, s] -> [..., K, 4 s]
        return self.out(self.dropout(torch.cat(parts, dim=-1)))


def _gather(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states [N, T, d], index [N, K] -> [N, K, d]."""
    return torch.gather(states, 1, index.long()[:, :, None].expand(-1, -1, states.shape[-1]))


class TextGraph(nn.Module):
    """Window text -> every layer's states [W, layers + 1, L, d] and boundary logits [W, L, 2] (is the first /
    last piece of an entity; the candidate pruner's scores)."""

    def __init__(self, transformer: nn.Module, boundary: nn.Linear):
        super().__init__()
        self.transformer, self.boundary = transformer, boundary

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.transformer(input_ids=input_ids.long(), attention_mask=attention_mask.long(), output_hidden_states=True)
        return torch.stack(out.hidden_states, 1), self.boundary(out.last_hidden_state)


class MarkerPass(nn.Module):
    """Levitated markers through every layer of the transformer against a window's cached text states.

    The part both PL-Marker models share (NER: `SpanGraph`; relations: re_modeling.ObjectGraph): `embed` places marker
    words at their spans' positions, `layers` runs them through each layer with that layer's own modules: queries from
    the markers, keys and values from the text's layer input (masked to real text), from the marker itself and from
    its partner (start j <-> end j). The models differ only in which marker words they embed and what reads the result."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def embed(self, words: torch.Tensor, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Marker words ([2K, d], or [W, 2K, d]: K start markers, then K end markers) at the positions of the spans'
        first and last pieces (first, last [W, K]) -> the markers' layer input [W, 2K, d]."""
        emb = self.transformer.embeddings
        x = words + emb.token_type_embeddings.weight[0] + emb.position_embeddings(torch.cat([first, last], 1).long())
        return emb.dropout(emb.LayerNorm(x))

    def layers(self, states: torch.Tensor, attention_mask: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Markers m [W, 2K, d] against the text's states [W, layers + 1, L, d] -> their last-layer states [W, 2K, d].

        Written for the exported graph, where the [W, H, 2K, L] text scores are what costs: one matmul makes them with
        the padding mask applied (each key gets one more component, 0 for text and MASKED_SCORE for padding, met by a
        query component of 1); they are softmaxed on their own and joined to the self and partner scores through their
        log-sum-exp, so the big tensor is never masked, concatenated or sliced. (Masking and concatenating it spent a
        third of the span graph's ONNX Runtime time in Where, Concat, Slice and the transposes ONNX Runtime added.)
        Training runs the same code, so the exported graph is the trained one."""
        W, M, d = m.shape
        K = M // 2
        L = states.shape[2]
        partner = torch.cat([torch.arange(K, 2 * K), torch.arange(0, K)]).to(m.device)  # start j <-> end j
        pad_score = (attention_mask <= 0).to(states.dtype) * MASKED_SCORE  # [W, L]
        for i, layer in enumerate(self.transformer.encoder.layer):
            h = states[:, i]
            att = layer.attention.self
            H, dh = att.num_attention_heads, att.attention_head_size

            def heads(x: torch.Tensor) -> torch.Tensor:
                return x.view(x.shape[0], x.shape[1], H, dh).transpose(1, 2)  # [W, H, n, dh]

            scale = getattr(att, "scaling", dh ** -0.5)
            q, k_m, v_m = heads(att.query(m)) * scale, heads(att.key(m)), heads(att.value(m))
            v_t = heads(att.value(h))
            q_aug = torch.cat([q, q.new_ones(W, H, M, 1)], -1)  # [W, H, 2K, dh + 1]
            k_t = att.key(h).view(W, L, H, dh).permute(0, 2, 3, 1)  # [W, H, dh, L]
            k_aug = torch.cat([k_t, pad_score[:, None, None, :].expand(W, H, 1, L).to(k_t.dtype)], 2)  # [W, H, dh + 1, L]
            s_text = q_aug @ k_aug  # [W, H, 2K, L], padding at about MASKED_SCORE
            p_text = s_text.softmax(-1)
            # the text scores' log-sum-exp read off the softmax at its largest entry (p = exp(s - lse) there, and p >= 1/L):
            # two max reductions, which ONNX Runtime vectorises (its ReduceLogSumExp took a third of the graph's time)
            lse_text = s_text.amax(-1, keepdim=True) - torch.log(p_text.amax(-1, keepdim=True))  # [W, H, 2K, 1]
            s_self = (q * k_m).sum(-1, keepdim=True)
            s_partner = (q * k_m[:, :, partner]).sum(-1, keepdim=True)
            lse = torch.logsumexp(torch.cat([lse_text, s_self, s_partner], -1), -1, keepdim=True)  # the whole row's
            # softmax over [text, self, partner] without building it: the text part is p_text x exp(lse_text - lse)
            ctx = ((p_text @ v_t) * torch.exp(lse_text - lse) + v_m * torch.exp(s_self - lse)
                   + v_m[:, :, partner] * torch.exp(s_partner - lse))  # [W, H, 2K, dh]; no attention dropout: it cost 15% of a step
            attended = layer.attention.output(ctx.transpose(1, 2).reshape(W, M, H * dh), m)
            m = layer.output(layer.intermediate(attended), attended)
        return m


class SpanGraph(MarkerPass):
    """Candidate spans against a window's cached text states -> logits [W, K, C]: each span's start and end markers
    (the model's two marker words) through `MarkerPass.layers`, then the span classifier."""

    def __init__(self, transformer: nn.Module, classifier: SpanClassifier, marker_ids: list[int], snapshot: bool = False):
        """`snapshot`: read the two marker embeddings now, as constants (for export: the graph then carries two rows
        instead of the whole word-embedding table); otherwise look them up on every call (training)."""
        super().__init__(transformer)
        if len(marker_ids) != 2:
            raise ValueError("the model's config has no marker_ids (set when its featurizer is made)")
        self.classifier = classifier
        self.register_buffer("marker_ids", torch.tensor(marker_ids, dtype=torch.long), persistent=False)
        words = transformer.embeddings.word_embeddings.weight[self.marker_ids].detach().clone() if snapshot else None
        self.register_buffer("marker_words", words, persistent=False)

    def embed_markers(self, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        K = first.shape[1]
        w = self.marker_words if self.marker_words is not None else self.transformer.embeddings.word_embeddings(self.marker_ids)  # [2, d]
        is_end = (torch.arange(2 * K, device=first.device) >= K)[:, None]
        return self.embed(torch.where(is_end, w[1], w[0]), first, last)  # [2K, d]: K start markers, then K end markers

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor, span_first: torch.Tensor, span_last: torch.Tensor,
                span_shape: torch.Tensor) -> torch.Tensor:
        K = span_first.shape[1]
        m = self.layers(states, attention_mask, self.embed_markers(span_first, span_last))  # [W, 2K, d]
        text = states[:, -1]
        return self.classifier(m[:, :K], m[:, K:], _gather(text, span_first), _gather(text, span_last), span_shape)


class PLMarkerNER(nn.Module):
    def __init__(self, config: PLMarkerNERConfig, transformer: nn.Module):
        super().__init__()
        self.config = config
        self.encoder = MarkerEncoder(transformer)
        self.classifier = SpanClassifier(config.hidden_size, config.num_labels, config.dropout, config.shape_features)
        self.boundary = nn.Linear(config.hidden_size, 2)

    def text_graph(self) -> TextGraph:
        return TextGraph(self.encoder.transformer, self.boundary)

    def span_graph(self, snapshot: bool = False) -> SpanGraph:
        return SpanGraph(self.encoder.transformer, self.classifier, self.config.marker_ids, snapshot)

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The text-once pass over a WindowBatch: span logits [W, C, labels] and boundary logits [W, L, 2]."""
        states, boundary = self.text_graph()(batch.input_ids, batch.attention_mask)
        logits = self.span_graph()(states, batch.attention_mask, batch.span_first, batch.span_last, batch.span_shape)
        return logits, boundary

    def dense(self, batch) -> torch.Tensor:
        """The dense packed pass over a SpanBatch (the reference): logits [N, K, labels]."""
        states = self.encoder(batch.input_ids, batch.position_ids, batch.attention_mask)
        return self.classifier(_gather(states, batch.start_index), _gather(states, batch.end_index),
                               _gather(states, batch.text_start), _gather(states, batch.text_end), batch.span_shape)


def init_markers_from_words(transformer: nn.Module, tokenizer, start_id: int, end_id: int) -> None:
    """The original's `lminit`: the start marker's embedding starts as [MASK]'s, the end marker's as "entity"'s."""
    emb = transformer.get_input_embeddings().weight
    entity = tokenizer("entity", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        if tokenizer.mask_token_id is not None and start_id != tokenizer.mask_token_id:
            emb[start_id] = emb[tokenizer.mask_token_id]
        if len(entity) == 1 and end_id != tokenizer.mask_token_id:
            emb[end_id] = emb[entity[0]]
