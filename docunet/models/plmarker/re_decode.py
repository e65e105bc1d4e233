"""PL-Marker relation decoding (the original's inference) and its three scores (Ent, Rel, Rel+ F1).

Decoding, per sentence: every ordered (subject, object) pair was scored in the subject's instance. For each
unordered pair {i, j} the log-softmax of (i, j) is added to the log-softmax of (j, i) read in the (i, j)
direction (its classes permuted: an asymmetric class <-> its inverse); the argmax class, when not "none", is the
relation, an inverse class flipping the pair back to (j, i). Relations are then taken best first, and one is
dropped when a kept one has the same relation and overlapping subject and overlapping object spans.

Scoring counts as the original: a symmetric relation counts twice (predicted, gold and correct), and is correct
in either direction; Rel needs the argument spans and the relation, Rel+ also both argument types.
The order of the greedy step is the original's too (config.original_ranking): a relation read from an inverse class
is ranked by the summed score of the *forward* class of the pair i < j (the original reads the score after flipping
the label), so a flipped relation ranks lower than its evidence says; False ranks by the chosen class's score.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...documents import Document, PredictedRelation
from ...metrics import Scores, f1_score
from .re_config import LabelSpace, PLMarkerREConfig


@dataclass(frozen=True)
class SpanRelation(PredictedRelation):
    """A predicted relation between two spans of a sentence; `head` / `tail` are the input document's entities."""

    sent_id: int = -1
    head_span: tuple[int, int] = (0, 0)  # words [start, end) of the sentence
    tail_span: tuple[int, int] = (0, 0)
    head_type: str = ""
    tail_type: str = ""
    symmetric: bool = False  # the relation is symmetric (scored in either direction, counted twice)


def pair_table(batch, re_logits: torch.Tensor, ner_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter the rows' log-softmax into per-sentence tables: scores [S, n, n, C] (subject i, object j), whether each
    pair was scored [S, n, n], and the type head's argmax for object j seen with subject i [S, n, n]."""
    S, n = batch.tables.span_mask.shape
    C = re_logits.shape[-1]
    valid = batch.obj_mask & (batch.sub_index >= 0)[:, None]
    rows, k = valid.nonzero(as_tuple=True)
    s, i, j = batch.sentence[rows], batch.sub_index[rows], batch.obj_index[rows, k]
    scores = torch.zeros(S, n, n, C, dtype=torch.float32, device=re_logits.device)
    scored = torch.zeros(S, n, n, dtype=torch.bool, device=re_logits.device)
    types = torch.zeros(S, n, n, dtype=torch.long, device=re_logits.device)
    scores[s, i, j] = re_logits[rows, k].float().log_softmax(-1)
    scored[s, i, j] = True
    types[s, i, j] = ner_logits[rows, k].argmax(-1)
    return scores, scored, types


def combine_directions(scores: torch.Tensor, scored: torch.Tensor, labels: LabelSpace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed scores [S, n, n, C] of each pair i < j in the i -> j direction, which pairs count [S, n, n], how many
    directions were scored [S, n, n]). A pair scored in one direction only (an argument cut off by the text
    window) keeps that direction's scores (the original asserts that both exist)."""
    perm = torch.tensor(labels.permutation, device=scores.device)
    reverse = scores.transpose(1, 2)[..., perm]
    back = scored.transpose(1, 2)
    total = scores * scored[..., None] + reverse * back[..., None]
    n = scores.shape[1]
    upper = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    return total, (scored | back) & upper, scored.long() + back.long()


def select_relations(cands: list[tuple]) -> list[tuple]:
    """Greedy over (score, (subject start, end), (object start, end), label, ...) of one sentence, best first: a
    relation is dropped when a kept one has the same label, an overlapping subject and an overlapping object."""
    def overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    kept: list[tuple] = []
    for c in sorted(cands, key=lambda x: -x[0]):
        if not any(c[3] == k[3] and overlap(c[1], k[1]) and overlap(c[2], k[2]) for k in kept):
            kept.append(c)
    return kept


def decode_relations(batch, re_logits: torch.Tensor, ner_logits: torch.Tensor, config: PLMarkerREConfig,
                     threshold: float | None = None) -> list[list[SpanRelation]]:
    """The original's inference over a batch (module docstring): one list of SpanRelations per document. Argument
    types come from the input entities (config.use_ner_types) or from the type head, where an argument typed
    "none" drops the relation. `threshold` (optional) is a minimum score."""
    labels = config.labels
    scores, scored, types = pair_table(batch, re_logits, ner_logits)
    total, pairs, directions = combine_directions(scores, scored, labels)
    best = total.argmax(-1)
    s, i, j = (pairs & (best > 0)).nonzero(as_tuple=True)
    k = best[s, i, j]
    value = total[s, i, j, k]
    if config.original_ranking:  # the forward class's score of a flipped relation (module docstring)
        k_rank = torch.where(k >= labels.num_base, torch.tensor(labels.permutation, device=k.device)[k], k)
        rank = total[s, i, j, k_rank].tolist()
    else:
        rank = value.tolist()
    margin = (value - total[s, i, j, 0]).tolist()
    prob = torch.exp(value / directions[s, i, j].clamp(min=1)).tolist()  # geometric mean over the scored directions
    t = batch.tables
    words, entity, doc, sid = t.span_word.tolist(), t.span_entity.tolist(), t.sent_doc.tolist(), t.sent_id.tolist()
    head_types, tail_types = types[s, j, i].tolist(), types[s, i, j].tolist()
    by_sentence: dict[int, list[tuple]] = {}
    for n, (a, b, c, cls) in enumerate(zip(s.tolist(), i.tolist(), j.tolist(), k.tolist())):
        if config.use_ner_types:
            ta, tb = t.type_names[a][b], t.type_names[a][c]
        else:
            if head_types[n] == 0 or tail_types[n] == 0:
                continue
            ta, tb = config.entity_types[head_types[n] - 1], config.entity_types[tail_types[n] - 1]
        name, flipped = labels.relation_of(cls)
        if flipped:
            b, c, ta, tb = c, b, tb, ta
        by_sentence.setdefault(a, []).append((rank[n], tuple(words[a][b]), tuple(words[a][c]), name, b, c, ta, tb,
                                              prob[n], margin[n]))
    out: list[list[SpanRelation]] = [[] for _ in range(batch.num_docs)]
    for a, cands in sorted(by_sentence.items()):
        for v, hs, ts, name, b, c, ta, tb, p, m in select_relations(cands):
            if threshold is not None and p < threshold:
                continue
            out[doc[a]].append(SpanRelation(entity[a][b], entity[a][c], name, p, m, sent_id=sid[a], head_span=hs, tail_span=ts,
                                            head_type=ta, tail_type=tb, symmetric=name in labels.symmetric))
    return out


def _gold(docs: Sequence[Document], symmetric: set[str]) -> tuple[set, set, set]:
    """Gold entity spans with types, relations (doc, sentence, head span, tail span, label), and with both types; a
    symmetric relation in both directions (the original's golden sets). Relations across sentences are not counted
    (a sentence-level model cannot predict them; SciERC has none)."""
    ents, rels, typed = set(), set(), set()
    for d, doc in enumerate(docs):
        for e in doc.entities:
            for m in e:
                ents.add((d, m.sent_id, m.start, m.end, m.type))
        for r in doc.relations or []:
            for h in doc.entities[r.head]:
                for t in doc.entities[r.tail]:
                    if h.sent_id != t.sent_id:
                        continue
                    a, b, ta, tb = (h.start, h.end), (t.start, t.end), (h.start, h.end, h.type), (t.start, t.end, t.type)
                    for x, y, tx, ty in ((a, b, ta, tb), (b, a, tb, ta)) if r.label in symmetric else ((a, b, ta, tb),):
                        rels.add((d, h.sent_id, x, y, r.label))
                        typed.add((d, h.sent_id, tx, ty, r.label))
    return ents, rels, typed


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    return {"precision": p, "recall": r, "f1": f1_score(p, r), "predicted": predicted, "gold": gold, "correct": correct}


def relation_report(gold_docs: Sequence[Document], predictions: Sequence[list[SpanRelation]], symmetric: Sequence[str],
                    entity_docs: Sequence[Document] | None = None) -> dict[str, dict[str, float]]:
    """{"ent", "rel", "rel+"} -> precision, recall, f1 and counts. `entity_docs`: the documents the model was given
    (their entities are the NER model's predictions; default the gold documents, Ent F1 then 1)."""
    sym = set(symmetric)
    ents, rels, typed = _gold(gold_docs, sym)
    pred_ents = _gold(entity_docs if entity_docs is not None else gold_docs, sym)[0]
    weight = lambda label: 2 if label in sym else 1  # noqa: E731
    out = {"ent": _prf(len(ents & pred_ents), len(pred_ents), len(ents))}
    n_gold = len(rels)
    counts = {"rel": [0, 0], "rel+": [0, 0]}
    for d, preds in enumerate(predictions):
        for r in preds:
            w = weight(r.label)
            h, t = (r.head_span[0], r.head_span[1]), (r.tail_span[0], r.tail_span[1])
            ht, tt = (*h, r.head_type), (*t, r.tail_type)
            for key, gold, a, b in (("rel", rels, h, t), ("rel+", typed, ht, tt)):
                counts[key][0] += w
                hit = (d, r.sent_id, a, b, r.label) in gold or (w == 2 and (d, r.sent_id, b, a, r.label) in gold)
                counts[key][1] += w if hit else 0
    for key in ("rel", "rel+"):
        out[key] = _prf(counts[key][1], counts[key][0], n_gold)
    return out


def relation_scores(gold_docs: Sequence[Document], predictions: Sequence[list[SpanRelation]], symmetric: Sequence[str],
                    entity_docs: Sequence[Document] | None = None) -> Scores:
    """Rel+ as the model-selection score (the original keeps the checkpoint with the best f1_with_ner): P/R/F1 of
    Rel+, and Rel F1 in `ign_f1` (the looser number, as the NER family's untyped F1)."""
    rep = relation_report(gold_docs, predictions, symmetric, entity_docs)
    strict, loose = rep["rel+"], rep["rel"]
    return Scores(strict["precision"], strict["recall"], strict["f1"], loose["f1"], int(strict["predicted"]), int(strict["gold"]),
                  int(strict["correct"]))
