"""PL-Marker relation model (subject-oriented packing) on a stock transformers encoder (no fork).

Two passes compute the same logits. The dense packed pass (the original's; `PLMarkerRE.dense`): the subject's
text with its solid markers and K levitated object marker pairs in one sequence with explicit position ids and
a [N, T, T] mask (the NER model's `MarkerEncoder`). The text-once pass (`forward`): the text never attends to
the object markers, so `SubjectTextGraph` encodes each subject's text once (every layer's states) and
`ObjectGraph` (the NER model's `MarkerPass`, with per-object marker words) runs all its objects' markers
against the cached states: a subject with more than K objects pays for its text once instead of once per
packed instance. Nothing is shared across subjects: the solid markers change every text state. Measured on
SciERC (BERT uncased word pieces, max_seq_length 256, featurization only): at the original's K = 16 no subject has
more than 16 objects, so both passes encode the same tokens (dev 148,763) and the text-once pass saves only the
marker rows' attention (4% of attention scores); at K = 4 it encodes 28% fewer tokens (dev 205,307 -> 148,763).

The classifier is the original's: relation logits = Linear([sub start; sub end]) + Linear([obj start; obj end])
(additive, broadcast over the objects), and an auxiliary entity-type head Linear([obj start; obj end]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modeling import MarkerEncoder, MarkerPass, _gather
from .re_config import PLMarkerREConfig


class RelationHead(nn.Module):
    """[sub start; sub end] and [obj start; obj end] -> relation logits [N, C, labels], entity-type logits [N, C, types + 1]."""

    def __init__(self, hidden: int, num_labels: int, num_entity_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.subject = nn.Linear(2 * hidden, num_labels)
        self.object = nn.Linear(2 * hidden, num_labels)
        self.entity = nn.Linear(2 * hidden, num_entity_labels)

    def forward(self, sub: torch.Tensor, obj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sub, obj = self.dropout(sub), self.dropout(obj)
        return self.subject(sub)[:, None, :] + self.object(obj), self.entity(obj)


class SubjectTextGraph(nn.Module):
    """A subject's text (solid markers in it) -> every layer's states [N, layers + 1, L, d]."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.transformer(input_ids=input_ids.long(), attention_mask=attention_mask.long(), output_hidden_states=True)
        return torch.stack(out.hidden_states, 1)


class ObjectGraph(MarkerPass):
    """Objects against a subject's cached text states -> (relation logits [N, C, labels], type logits [N, C, types + 1]).

    The NER model's marker pass (each marker sees the text, itself and its partner), with each object's own marker
    words (type markers) looked up in the model's marker table, and the relation head on top."""

    def __init__(self, transformer: nn.Module, head: RelationHead, marker_ids: list[int], snapshot: bool = False):
        """`snapshot`: read the marker table now, as constants (for export: the graph carries its few rows instead of
        the whole word-embedding table); otherwise look it up on every call (training)."""
        super().__init__(transformer)
        self.head = head
        self.register_buffer("table_ids", torch.tensor(marker_ids, dtype=torch.long), persistent=False)
        words = transformer.embeddings.word_embeddings.weight[self.table_ids].detach().clone() if snapshot else None
        self.register_buffer("table_words", words, persistent=False)

    def marker_words(self, obj_markers: torch.Tensor) -> torch.Tensor:
        """obj_markers [N, K, 2] (indices into the marker table) -> words [N, 2K, d]: K start markers, then K end markers."""
        table = self.table_words if self.table_words is not None else self.transformer.embeddings.word_embeddings(self.table_ids)
        return table[torch.cat([obj_markers[..., 0], obj_markers[..., 1]], 1).long()]

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor, sub_pos: torch.Tensor, obj_first: torch.Tensor,
                obj_last: torch.Tensor, obj_markers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        K = obj_first.shape[1]
        m = self.layers(states, attention_mask, self.embed(self.marker_words(obj_markers), obj_first, obj_last))  # [N, 2K, d]
        sub = _gather(states[:, -1], sub_pos).flatten(1)  # [N, 2d]: the solid markers' last-layer states
        return self.head(sub, torch.cat([m[:, :K], m[:, K:]], -1))


class PLMarkerRE(nn.Module):
    def __init__(self, config: PLMarkerREConfig, transformer: nn.Module):
        super().__init__()
        self.config = config
        self.encoder = MarkerEncoder(transformer)
        self.head = RelationHead(config.hidden_size, config.num_labels, config.num_entity_labels, config.dropout)

    def text_graph(self) -> SubjectTextGraph:
        return SubjectTextGraph(self.encoder.transformer)

    def object_graph(self, snapshot: bool = False) -> ObjectGraph:
        if len(self.config.marker_ids) < 4:
            raise ValueError("the model's config has no marker_ids (set when its featurizer is made)")
        return ObjectGraph(self.encoder.transformer, self.head, self.config.marker_ids, snapshot)

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The text-once pass over a SubjectBatch: relation logits [N, C, labels], type logits [N, C, types + 1]."""
        states = self.text_graph()(batch.input_ids, batch.attention_mask)
        return self.object_graph()(states, batch.attention_mask, batch.sub_pos, batch.obj_first, batch.obj_last, batch.obj_markers)

    def dense(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The dense packed pass over a PackedBatch (the reference): relation logits [N, K, labels], type logits."""
        states = self.encoder(batch.input_ids, batch.position_ids, batch.attention_mask)
        obj = torch.cat([_gather(states, batch.obj_start), _gather(states, batch.obj_end)], -1)
        return self.head(_gather(states, batch.sub_pos).flatten(1), obj)


def relation_loss(re_logits: torch.Tensor, ner_logits: torch.Tensor, labels: torch.Tensor, ner_labels: torch.Tensor,
                  nil_weight: float = 1.0) -> torch.Tensor:
    """The original's loss: cross-entropy over the pair classes ("none" weighted by `nil_weight`, the original's
    alpha) plus cross-entropy of the entity-type head over the objects; padding (-100) ignored."""
    weight = torch.ones(re_logits.shape[-1], device=re_logits.device)
    weight[0] = nil_weight
    loss = re_logits.sum() * 0.0
    if (labels != -100).any():
        loss = loss + F.cross_entropy(re_logits.reshape(-1, re_logits.shape[-1]).float(), labels.reshape(-1), weight=weight,
                                      ignore_index=-100)
    if (ner_labels != -100).any():
        loss = loss + F.cross_entropy(ner_logits.reshape(-1, ner_logits.shape[-1]).float(), ner_labels.reshape(-1), ignore_index=-100)
    return loss


def init_re_markers(transformer: nn.Module, tokenizer, marker_ids: list[int]) -> None:
    """Marker embeddings from words (the original's `lminit` idea): every start marker starts as [MASK], the solid
    end markers as "subject" and the levitated ones as "object" when the vocabulary has them as single pieces."""
    if len(set(marker_ids)) < len(marker_ids):  # markers that share a token (the mask token fallback): leave them
        return
    emb = transformer.get_input_embeddings().weight
    words = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("subject", "object")]
    sources = [tokenizer.mask_token_id, words[0][0] if len(words[0]) == 1 else None, tokenizer.mask_token_id,
               words[1][0] if len(words[1]) == 1 else None]
    with torch.no_grad():
        for i, target in enumerate(marker_ids):
            src = sources[i % 4]
            if src is not None and target != src:
                emb[target] = emb[src]
