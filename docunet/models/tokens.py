"""Tokenizer facts every family needs."""
from __future__ import annotations


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a single sequence starts and ends with ([CLS] / [SEP] for BERT, <s> / </s> for RoBERTa)."""
    body = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(body) + 1):
        if full[i : i + len(body)] == body:
            return list(full[:i]), list(full[i + len(body) :])
    raise ValueError("cannot locate the special tokens of this tokenizer")
