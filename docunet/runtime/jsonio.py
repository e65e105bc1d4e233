"""Streaming JSONL in and out for docunet-run: parse errors become BadInput placeholders, so every
input line gets exactly one output line, in order."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Iterator

from ..predict import PredictedRelation
from .runtime import BadInput, Prediction


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


def relation_record(p: Prediction, r: PredictedRelation, names: dict[str, str]) -> dict:
    doc = p.document
    return {"h": r.head, "t": r.tail, "h_name": doc.entities[r.head][0].name if doc else None,
            "t_name": doc.entities[r.tail][0].name if doc else None, "r": r.label,
            "relation": names.get(r.label, r.label), "score": round(r.score, 4)}


def output_record(p: Prediction, names: dict[str, str]) -> dict:
    if p.error is not None:
        return {"line": p.index + 1, "error": p.error}
    return {"title": p.title, "relations": [relation_record(p, r, names) for r in p.relations]}


def complete_lines(path: Path) -> int:
    """Lines already written in full; a half-written last line is cut off (for --resume)."""
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return data[:keep].count(b"\n")
