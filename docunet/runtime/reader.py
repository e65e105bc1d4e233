"""Streaming input for the runtime, over the one reader of every command (`docunet.readers`): JSONL
lines, a JSON list, stdin (`-`) or a CDR/GDA `.data` file, with `FILE[a:b]` slices. A record that
cannot be parsed becomes a BadInput placeholder, so every input line gets exactly one result, in order."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ..documents import Document, json_kind
from ..readers import DataSpec, Record, iter_records
from .runtime import BadInput


def item_of(record: Record) -> Any:
    """What the runtime takes for a record: a dict (with `_source` = "file:line"; a JSON string becomes
    {"text": ...}), a Document (`.data` lines) or a BadInput saying what is wrong."""
    if record.error is not None:
        return BadInput(record.source, record.error)
    if isinstance(record.value, dict):
        return {**record.value, "_source": record.source}
    if isinstance(record.value, str):  # a JSON string: raw text
        return {"text": record.value, "_source": record.source}
    if isinstance(record.value, Document):  # a CDR/GDA line
        return record.value
    return BadInput(record.source, f"expected a JSON object (a document), got {json_kind(record.value)}")


def read_items(spec: str | Path | DataSpec) -> Iterator[Any]:
    """`item_of` every record of a data spec."""
    for record in iter_records(spec):
        yield item_of(record)
