"""Learned pairwise coreference: a small classifier scores every pair of mentions, agglomerative
clustering turns the scores into entities.

After JEREX's coreference (a pair classifier, then complete-linkage clustering cut at
1 - threshold), but sized for CPUs and 400 training documents:
- pair features come from the two strings, types and positions only (cheap, always there), and
  include the rule baseline's decision (`rules.cluster_mentions`), so the model learns where the
  rules go wrong instead of relearning them;
- optional precomputed mention vectors (e.g. `encode_mentions` with MiniLM) add their cosine and a
  small layer over [u * v, |u - v|];
- the model is logistic regression (hidden=0) or a one-hidden-layer MLP in torch, trained with
  binary cross-entropy on same-document mention pairs (positives: same gold entity).

`LearnedCoref.cluster` has `rules.cluster_mentions`'s contract: every mention in exactly one
cluster, mentions ordered by position inside a cluster and clusters by their first mention.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .pair_features import FEATURE_NAMES, pair_features
from .rules import MentionLike

Linkage = Literal["complete", "average"]
_FORMAT = "docunet-learned-coref"


class PairNet(nn.Module):
    """Pair logit from pair features (+ cosine and [u * v, |u - v|] of unit mention vectors when
    vector_dim > 0); hidden=0 is logistic regression."""

    def __init__(self, n_features: int, hidden: int = 32, vector_dim: int = 0) -> None:
        super().__init__()
        self.n_features, self.hidden, self.vector_dim = n_features, hidden, vector_dim
        width = hidden or 1
        self.features = nn.Linear(n_features + (1 if vector_dim else 0), width)
        self.vectors = nn.Linear(2 * vector_dim, width, bias=False) if vector_dim else None
        self.out = nn.Linear(hidden, 1) if hidden else None

    def forward(self, feats: torch.Tensor, u: torch.Tensor | None = None, v: torch.Tensor | None = None) -> torch.Tensor:
        if self.vectors is not None:
            if u is None or v is None:
                raise ValueError("this model needs mention vectors")
            u, v = nn.functional.normalize(u, dim=-1), nn.functional.normalize(v, dim=-1)
            feats = torch.cat([feats, (u * v).sum(-1, keepdim=True)], dim=-1)
            h = self.features(feats) + self.vectors(torch.cat([u * v, (u - v).abs()], dim=-1))
        else:
            h = self.features(feats)
        if self.out is not None:
            h = self.out(torch.relu(h))
        return h.squeeze(-1)


@dataclass
class CorefExample:
    """One training / tuning document: its mentions, each mention's gold entity id, and optionally
    the words (for mentions without text) and mention vectors [n, d]."""

    mentions: Sequence[MentionLike]
    entity_ids: Sequence[int]
    sents: Sequence[Sequence[str]] | None = None
    vectors: np.ndarray | None = None


def agglomerate(probs: np.ndarray, threshold: float, linkage: Linkage = "complete") -> list[int]:
    """Cluster labels from a symmetric [n, n] pair-probability matrix: agglomerative clustering over
    distances 1 - p, cut at 1 - threshold (complete linkage: every pair in a cluster has p >= threshold)."""
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as scipy_linkage

    n = len(probs)
    if n < 2:
        return [0] * n
    dist = 1.0 - probs[np.triu_indices(n, 1)].astype(np.float64)
    tree = scipy_linkage(np.clip(dist, 0.0, 1.0), method=linkage)
    return fcluster(tree, t=1.0 - threshold, criterion="distance").tolist()


def ordered_clusters(mentions: Sequence[MentionLike], labels: Sequence[int]) -> list[list[int]]:
    """Clusters as index lists: mentions by position inside a cluster, clusters by first mention."""
    order = sorted(range(len(mentions)), key=lambda i: (mentions[i].sent_id, mentions[i].start, mentions[i].end, i))
    clusters: dict[int, list[int]] = {}
    for i in order:
        clusters.setdefault(labels[i], []).append(i)
    return list(clusters.values())


def exact_cluster_counts(clusters: Sequence[Sequence[int]], entity_ids: Sequence[int]) -> tuple[int, int, int]:
    """(predicted, gold, correct) clusters of one document; correct = identical member sets."""
    gold: dict[int, set[int]] = {}
    for i, e in enumerate(entity_ids):
        gold.setdefault(e, set()).add(i)
    gold_sets = {frozenset(g) for g in gold.values()}
    pred_sets = {frozenset(c) for c in clusters}
    return len(pred_sets), len(gold_sets), len(pred_sets & gold_sets)


def _f1(predicted: int, gold: int, correct: int) -> float:
    return 2 * correct / (predicted + gold) if predicted + gold else 0.0


def _training_pairs(examples: Sequence[CorefExample], use_vectors: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Features, labels, global (i, j) rows into the stacked vectors, stacked vectors (or None)."""
    feats, labels, index, vecs = [], [], [], []
    offset = 0
    for ex in examples:
        if len(ex.entity_ids) != len(ex.mentions):
            raise ValueError(f"{len(ex.entity_ids)} entity ids for {len(ex.mentions)} mentions")
        pairs, f = pair_features(ex.mentions, ex.sents)
        ids = np.asarray(ex.entity_ids)
        feats.append(f)
        labels.append((ids[pairs[:, 0]] == ids[pairs[:, 1]]).astype(np.float32) if len(pairs) else np.zeros(0, np.float32))
        index.append(pairs + offset)
        if use_vectors:
            if ex.vectors is None or len(ex.vectors) != len(ex.mentions):
                raise ValueError("use_vectors=True needs one vector per mention in every example")
            vecs.append(np.asarray(ex.vectors, dtype=np.float32))
        offset += len(ex.mentions)
    stacked = np.concatenate(vecs) if use_vectors and vecs else None
    return np.concatenate(feats), np.concatenate(labels), np.concatenate(index), stacked


class LearnedCoref:
    """A trained pair scorer plus the clustering settings (threshold, linkage) it was tuned with."""

    def __init__(self, net: PairNet, threshold: float = 0.5, linkage: Linkage = "complete") -> None:
        self.net = net.eval()
        self.threshold = threshold
        self.linkage: Linkage = linkage

    @property
    def uses_vectors(self) -> bool:
        return self.net.vector_dim > 0

    @classmethod
    def train(cls, examples: Sequence[CorefExample], *, use_vectors: bool = False, hidden: int = 32,
              epochs: int = 8, batch_size: int = 512, lr: float = 3e-3, weight_decay: float = 1e-4,
              negatives_per_positive: float | None = None, seed: int = 0) -> LearnedCoref:
        """Fit on every same-document mention pair (BCE); `negatives_per_positive` keeps at most that
        many negatives per positive (a seeded random subset). Deterministic for a given seed."""
        feats, labels, index, vecs = _training_pairs(examples, use_vectors)
        rng = np.random.default_rng(seed)
        if negatives_per_positive is not None:
            pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
            keep = min(len(neg), int(negatives_per_positive * len(pos)))
            chosen = np.sort(np.concatenate([pos, rng.choice(neg, keep, replace=False)]))
            feats, labels, index = feats[chosen], labels[chosen], index[chosen]
        x, y = torch.from_numpy(feats), torch.from_numpy(labels)
        pair_index = torch.from_numpy(index)
        all_vecs = torch.from_numpy(vecs) if vecs is not None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = PairNet(x.shape[1], hidden, all_vecs.shape[1] if all_vecs is not None else 0)
            gen = torch.Generator().manual_seed(seed)
            opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
            loss_fn = nn.BCEWithLogitsLoss()
            net.train()
            for _ in range(epochs):
                for batch in torch.randperm(len(y), generator=gen).split(batch_size):
                    u = v = None
                    if all_vecs is not None:
                        u, v = all_vecs[pair_index[batch, 0]], all_vecs[pair_index[batch, 1]]
                    loss = loss_fn(net(x[batch], u, v), y[batch])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        return cls(net)

    def pair_probabilities(self, mentions: Sequence[MentionLike], sents: Sequence[Sequence[str]] | None = None,
                           vectors: np.ndarray | None = None) -> np.ndarray:
        """Symmetric [n, n] coreference probabilities (diagonal 1)."""
        n = len(mentions)
        probs = np.eye(n, dtype=np.float32)
        if n < 2:
            return probs
        if self.uses_vectors and (vectors is None or len(vectors) != n):
            raise ValueError("this model needs one mention vector per mention")
        pairs, feats = pair_features(mentions, sents)
        u = v = None
        if self.uses_vectors:
            vt = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
            u, v = vt[pairs[:, 0]], vt[pairs[:, 1]]
        with torch.no_grad():
            p = torch.sigmoid(self.net(torch.from_numpy(feats), u, v)).numpy()
        probs[pairs[:, 0], pairs[:, 1]] = p
        probs[pairs[:, 1], pairs[:, 0]] = p
        return probs

    def cluster(self, mentions: Sequence[MentionLike], sents: Sequence[Sequence[str]] | None = None,
                vectors: np.ndarray | None = None) -> list[list[int]]:
        """Clusters of indices into `mentions` (same contract as `rules.cluster_mentions`)."""
        if not mentions:
            return []
        labels = agglomerate(self.pair_probabilities(mentions, sents, vectors), self.threshold, self.linkage)
        return ordered_clusters(mentions, labels)

    def tune(self, examples: Sequence[CorefExample], thresholds: Sequence[float] = tuple(np.arange(0.05, 0.96, 0.05)),
             linkages: Sequence[Linkage] = ("complete", "average")) -> dict[tuple[str, float], float]:
        """Set threshold and linkage to the pair with the best micro exact-cluster F1 on `examples`
        (held-out documents, never the test set); returns every (linkage, threshold) -> F1."""
        probs = [self.pair_probabilities(ex.mentions, ex.sents, ex.vectors) for ex in examples]
        scores: dict[tuple[str, float], float] = {}
        for link in linkages:
            for t in thresholds:
                totals = np.zeros(3, dtype=np.int64)
                for ex, p in zip(examples, probs):
                    labels = agglomerate(p, float(t), link)
                    totals += exact_cluster_counts(ordered_clusters(ex.mentions, labels), ex.entity_ids)
                scores[(link, round(float(t), 4))] = _f1(*totals)
        (self.linkage, self.threshold), _ = max(scores.items(), key=lambda kv: kv[1])
        return scores

    def save(self, path: str | Path) -> None:
        """A small JSON file: settings, feature names and every weight (float32 values, exact)."""
        state = {k: {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}
                 for k, t in self.net.state_dict().items()}
        Path(path).write_text(json.dumps({
            "format": _FORMAT, "version": 1, "feature_names": list(FEATURE_NAMES),
            "hidden": self.net.hidden, "vector_dim": self.net.vector_dim,
            "threshold": self.threshold, "linkage": self.linkage, "state": state}))

    @classmethod
    def load(cls, path: str | Path) -> LearnedCoref:
        """The model `save` wrote; ValueError if it was built for other features."""
        blob: dict[str, Any] = json.loads(Path(path).read_text())
        if blob.get("format") != _FORMAT or tuple(blob.get("feature_names", ())) != FEATURE_NAMES:
            raise ValueError(f"{path} is not a learned coreference model for these features")
        net = PairNet(len(FEATURE_NAMES), blob["hidden"], blob["vector_dim"])
        net.load_state_dict({k: torch.tensor(v["data"], dtype=torch.float32).reshape(v["shape"])
                             for k, v in blob["state"].items()})
        return cls(net, float(blob["threshold"]), blob["linkage"])


def encode_mentions(sents: Sequence[Sequence[str]], mentions: Sequence[MentionLike], tokenizer: Any,
                    model: Any, max_pieces: int = 512) -> np.ndarray:
    """Mention vectors [n, hidden]: the mean of the last hidden states of the mention's word pieces.
    The document's words are encoded in windows of at most `max_pieces` pieces (with [CLS]/[SEP]),
    cut between words; `tokenizer` must be a fast (word_ids-capable) HF tokenizer."""
    words = [w for s in sents for w in s]
    starts = np.cumsum([0] + [len(s) for s in sents])
    enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    ids, word_ids = enc["input_ids"], enc.word_ids()
    states = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    room, begin = max_pieces - 2, 0
    while begin < len(ids):
        end = min(begin + room, len(ids))
        while end < len(ids) and end > begin + 1 and word_ids[end] == word_ids[end - 1]:
            end -= 1  # do not split a word between windows
        window = [tokenizer.cls_token_id, *ids[begin:end], tokenizer.sep_token_id]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([window]), attention_mask=torch.ones(1, len(window), dtype=torch.long))
        states[begin:end] = out.last_hidden_state[0, 1:-1].numpy()
        begin = end
    pieces_of: dict[int, list[int]] = {}
    for p, w in enumerate(word_ids):
        pieces_of.setdefault(w, []).append(p)
    out_vecs = np.zeros((len(mentions), states.shape[1]), dtype=np.float32)
    for k, m in enumerate(mentions):
        pieces = [p for w in range(starts[m.sent_id] + m.start, starts[m.sent_id] + m.end) for p in pieces_of.get(w, [])]
        if pieces:
            out_vecs[k] = states[pieces].mean(axis=0)
    return out_vecs
