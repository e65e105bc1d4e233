"""Streaming input for the runtime, over the one reader of every command (`docunet.readers`): JSONL
lines, a JSON list, stdin (`-`) or a CDR/GDA `.data` file, with `FILE[a:b]` slices. A record that
cannot be parsed becomes a BadInput placeholder, so every input line gets exactly one result, in order."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ..documents import Document, json_kind
from ..readers import DataSpec, iter_records
from .runtime import BadInput


def read_items(spec: str | Path | DataSpec) -> Iterator[Any]:
    """A dict (with `_source` = "file:line"), a Document (`.data` lines) or a BadInput per record."""
    for record in iter_records(spec):
        if record.error is not None:
            yield BadInput(record.source, record.error)
        elif isinstance(record.value, dict):
            yield {**record.value, "_source": record.source}
        elif isinstance(record.value, Document):  # a CDR/GDA line
            yield record.value
        else:
            yield BadInput(record.source, f"expected a JSON object (a document), got {json_kind(record.value)}")
