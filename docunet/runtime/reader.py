"""Streaming input for the runtime: JSONL lines (or a JSON list, or stdin) as dicts, with parse
errors as BadInput placeholders, so every input line gets exactly one result, in order."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any, Iterator

from .runtime import BadInput


def _open_input(path: str) -> tuple[IO[bytes], str]:
    if path == "-":
        return sys.stdin.buffer, "<stdin>"
    return open(path, "rb"), path


def read_items(path: str) -> Iterator[Any]:
    """Yield a dict (with `_source` = "file:line") or a BadInput per input line; a JSON list file per element."""
    fh, name = _open_input(path)
    try:
        first = fh.peek(64)[:64] if hasattr(fh, "peek") else b""
        if first.lstrip().startswith(b"["):
            try:
                data = json.loads(fh.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield BadInput(name, f"not a valid JSON list: {exc}")
                return
            for i, obj in enumerate(data):
                if isinstance(obj, dict):
                    obj["_source"] = f"{name}#{i}"
                yield obj
            return
        for lineno, raw in enumerate(fh, start=1):
            source = f"{name}:{lineno}"
            if not raw.strip():
                yield BadInput(source, "empty line")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadInput(source, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield BadInput(source, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if isinstance(obj, dict):
                obj["_source"] = source
            yield obj
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()
