"""Streaming output of predictions: one JSON record per input (or a DocRED submission list), to a
file or stdout, resumable, with a summary. `docunet-run` is a thin layer over `write_predictions`;
Python callers and other engines (a Ray pipeline) write the same records with it."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable

from ..documents import PredictedEntity, PredictedRelation, PredictedSpan
from .runtime import Prediction

FORMATS = ("jsonl", "docred", "docred-docs", "text")
# characters that JSON leaves raw inside strings but line readers split on (Python's str.splitlines, editors, older
# JavaScript): escaped, so that one record stays one line whatever text it quotes
_ESCAPE_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def json_text(record: object) -> str:
    """A record as one line of JSON: non-ASCII text kept readable, only the line-breaking characters escaped."""
    return json.dumps(record, ensure_ascii=False).translate(_ESCAPE_LINE_BREAKS)


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def relation_record(p: Prediction, r: PredictedRelation, names: dict[str, str]) -> dict:
    """h, t: entity indices; h_name, t_name: their first mentions; r: the relation code, relation: its
    readable name; score: probability-like in (0, 1); margin: the raw decision value (see PredictedRelation)."""
    return {"h": r.head, "t": r.tail, "h_name": r.head_name, "t_name": r.tail_name, "r": r.label,
            "relation": r.relation or names.get(r.label, r.label), "score": round(r.score, 4), "margin": round(r.margin, 4)}


def mention_record(s: PredictedSpan, full: bool = True) -> dict:
    """start, end: character offsets (into the input's text, or into its words joined by single spaces), so
    text == input[start:end]; sent: sentence index; words: word span [start, end) in it; type and score (the
    model's probability; absent for given mentions) with `full`."""
    record = {"start": s.start_char, "end": s.end_char, "text": s.text, "sent": s.sent_id, "words": [s.start, s.end]}
    if full:
        record["type"] = s.type
    if s.score is not None:
        record["score"] = round(s.score, 4)
    return record


def entity_record(i: int, e: PredictedEntity) -> dict:
    """id: the index relations' h / t refer to; type; name (the first mention's text); mentions."""
    return {"id": i, "type": e.type, "name": e.name, "mentions": [mention_record(m, full=False) for m in e.mentions]}


def output_record(p: Prediction, names: dict[str, str]) -> dict:
    """The JSONL record of one prediction: its entities (pipelines), mentions (entity models) and relations, or the
    error with the input's line number."""
    if p.error is not None:
        return {"line": p.index + 1, "error": p.error}
    record: dict = {"title": p.title}
    if p.entities is not None:
        record["entities"] = [entity_record(i, e) for i, e in enumerate(p.entities)]
    elif p.mentions:
        record["mentions"] = [mention_record(s) for s in p.mentions]
    if p.relations or not p.mentions or p.entities is not None:
        record["relations"] = [relation_record(p, r, names) for r in p.relations]
    if p.warning:
        record["warning"] = p.warning
    return record


def document_record(p: Prediction) -> dict:
    """The prediction as a DocRED document (title, sents, vertexSet, labels), to correct by hand and train on: a
    pipeline's entities, an entity model's mentions (one entity each) or the input's own entities."""
    if p.error is not None or p.document is None:
        return {"line": p.index + 1, "error": p.error or "no document"}
    doc = p.document
    if p.entities is not None:
        groups = [list(e.mentions) for e in p.entities]
    elif p.mentions:
        groups = [[m] for m in p.mentions]
    else:
        groups = [[PredictedSpan(m.sent_id, m.start, m.end, m.type, None, m.name) for m in e] for e in doc.entities]
    vertex_set = [[{"name": m.text, "sent_id": m.sent_id, "pos": [m.start, m.end], "type": m.type} for m in g] for g in groups]
    labels = [{"h": r.head, "t": r.tail, "r": r.label, "evidence": []} for r in p.relations]
    return {"title": p.title if p.title is not None else doc.title, "sents": doc.sents, "vertexSet": vertex_set, "labels": labels}


def complete_lines(path: Path) -> int:
    """Lines already written in full; a half-written last line is cut off (for resuming)."""
    path = Path(path)
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


@dataclass
class RunSummary:
    documents: int = 0
    relations: int = 0
    mentions: int = 0
    failed_lines: list[int] = field(default_factory=list)  # 1-based input lines
    resumed_after: int = 0

    def line(self, prog: str = "docunet-run") -> str:
        where = f" (resumed after {plural(self.resumed_after, 'line')})" if self.resumed_after else ""
        found = f"{plural(self.mentions, 'mention')}, " if self.mentions else ""
        text = (f"{prog}: {plural(self.documents, 'document')}{where}, {found}{plural(self.relations, 'relation')}, "
                f"{len(self.failed_lines)} failed")
        if self.failed_lines:
            shown = ", ".join(map(str, self.failed_lines[:20]))
            text += f" (lines {shown}{', ...' if len(self.failed_lines) > 20 else ''})"
        return text


def readable_record(p: Prediction, names: dict[str, str]) -> str:
    """A prediction for people (`--format text`): a header, the entities with their types and mention counts,
    then the relations, strongest first."""
    head = f"line {p.index + 1}" + (f": {p.title}" if p.title else "")
    if p.error is not None:
        return f"== {head}\nerror: {p.error}\n\n"
    lines = [f"== {head}"]
    if p.entities is not None:
        shown = [f"{e.name} ({e.type}" + (f", {len(e.mentions)} mentions)" if len(e.mentions) > 1 else ")") for e in p.entities]
        lines.append(f"entities ({len(shown)}): " + ("; ".join(shown) if shown else "none found"))
    elif p.mentions:
        lines.append(f"mentions ({len(p.mentions)}): " + "; ".join(f"{m.text} ({m.type})" for m in p.mentions))
    if p.relations or p.entities is not None or not p.mentions:
        lines.append(f"relations ({len(p.relations)}):" if p.relations else "relations: none found")
        for r in sorted(p.relations, key=lambda r: -r.score):
            lines.append(f"  {r.head_name}  --{r.relation or names.get(r.label, r.label)}-->  {r.tail_name}   ({r.score:.2f})")
    if p.warning:
        lines.append(f"warning: {p.warning}")
    return "\n".join(lines) + "\n\n"


class PredictionWriter:
    """Writes predictions in input order as JSONL records (`output_record`), as one DocRED submission list
    (`{"title", "h_idx", "t_idx", "r"}` per relation), as DocRED documents, one line per input line
    (`document_record`), or as readable text (`readable_record`), flushing every `flush_every` records."""

    def __init__(self, out: IO[str], fmt: str = "jsonl", relation_names: dict[str, str] | None = None, flush_every: int = 8):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.out, self.fmt, self.names, self.flush_every = out, fmt, relation_names or {}, max(1, flush_every)
        self.summary = RunSummary()
        self._first = True
        if fmt == "docred":
            out.write("[")

    def write(self, p: Prediction) -> None:
        s = self.summary
        s.documents += 1
        s.relations += len(p.relations)
        s.mentions += len(p.mentions)
        if p.error is not None:
            s.failed_lines.append(p.index + 1)
        if self.fmt == "jsonl":
            self.out.write(json_text(output_record(p, self.names)) + "\n")
        elif self.fmt == "docred-docs":
            self.out.write(json_text(document_record(p)) + "\n")
        elif self.fmt == "text":
            self.out.write(readable_record(p, self.names))
        else:
            for r in p.relations:
                record = {"title": p.title, "h_idx": r.head, "t_idx": r.tail, "r": r.label}
                self.out.write(("" if self._first else ",") + "\n" + json_text(record))
                self._first = False
        if s.documents % self.flush_every == 0:
            self.out.flush()

    def finish(self) -> RunSummary:
        if self.fmt == "docred":
            self.out.write("\n]\n")
        self.out.flush()
        return self.summary


def write_predictions(predictions: Iterable[Prediction], out_path: Path | None = None, fmt: str = "jsonl",
                      relation_names: dict[str, str] | None = None, skip: int = 0, flush_every: int = 8,
                      on_each: Callable[[Prediction], None] | None = None) -> RunSummary:
    """Stream `predictions` to `out_path` (stdout when None). `skip` > 0 resumes: the predictions are for
    the inputs after the first `skip` lines, which `out_path` already holds (see `complete_lines`);
    new records are appended with their line numbers shifted accordingly."""
    if skip and (out_path is None or fmt in ("docred", "text")):
        raise ValueError("resuming needs an output file in a line format (jsonl or docred-docs)")
    out = open(out_path, "a" if skip else "w", encoding="utf-8") if out_path is not None else sys.stdout
    try:
        writer = PredictionWriter(out, fmt, relation_names, flush_every)
        writer.summary.resumed_after = skip
        for p in predictions:
            p.index += skip
            writer.write(p)
            if on_each is not None:
                on_each(p)
        return writer.finish()
    finally:
        out.flush()
        if out is not sys.stdout:
            out.close()
