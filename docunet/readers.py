"""The one input reader of every command: DocRED / Re-DocRED JSON (a list or JSONL, a file or stdin)
and CDR / GDA `*.data` files.

`iter_records(spec)` yields one `Record` per document line (or JSON list element) with its source
(`file:line` or `file#index`), its parsed value, or the reason it could not be parsed: training and
evaluation (`load_documents`) stop at the first bad record, serving reports it and goes on. A data
spec may end in a python-style slice, `FILE[0:400]`, to take part of a file by document order (the
Re-DocRED dev file is split that way here). Relation vocabularies come from the data: `rel2id.json`
for DocRED-style data, the label set for CDR/GDA.
"""
from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from .documents import DataError, Document, Mention, Relation, data_error, document_from_docred, document_from_dygie, is_dygie

NA_LABEL = "Na"
_SLICE = re.compile(r"^(?P<path>.*)\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")


@dataclass(frozen=True)
class DataSpec:
    path: Path
    start: int | None = None
    stop: int | None = None

    @classmethod
    def parse(cls, spec: str | Path) -> "DataSpec":
        text = str(spec)
        m = _SLICE.match(text)
        if m and not Path(text).exists() and m["path"]:
            to_int = lambda s: int(s) if s not in ("", None) else None  # noqa: E731
            return cls(Path(m["path"]), to_int(m["start"]), to_int(m["stop"]))
        return cls(Path(text))

    def __str__(self) -> str:
        if self.start is None and self.stop is None:
            return str(self.path)
        return f"{self.path}[{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}]"


STDIN = "-"
EMPTY_LINE = "empty line"


@dataclass
class Record:
    """One input document: where it came from, its parsed value (a dict, or a Document for `.data`
    lines), or why it could not be parsed."""

    source: str
    value: Any = None
    error: str | None = None


def is_eog_file(path: Path) -> bool:
    return Path(path).suffix == ".data"


def check_readable(path: Path, what: str = "input") -> None:
    """DataError naming the path when it is missing, a directory, or not readable."""
    if str(path) == STDIN:
        return
    if not path.exists():
        raise DataError(f"{path}: no such file ({what})")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a file ({what})")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _json_error(exc: json.JSONDecodeError) -> str:
    msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg  # "Unterminated string starting at"
    return f"not valid JSON ({msg} at column {exc.colno})"


def _jsonl_records(lines: Iterator[bytes], name: str) -> Iterator[Record]:
    for lineno, raw in enumerate(lines, start=1):
        source = f"{name}:{lineno}"
        if not raw.strip():
            yield Record(source, error=EMPTY_LINE)
            continue
        try:
            text = raw.decode("utf-8").rstrip("\r\n")  # without the newline, a truncated line's error points into it
        except UnicodeDecodeError as exc:
            yield Record(source, error=f"not UTF-8 ({exc.reason} at byte {exc.start})")
            continue
        try:
            yield Record(source, json.loads(text))
        except json.JSONDecodeError as exc:
            yield Record(source, error=_json_error(exc))


def _json_list_records(data: bytes, name: str) -> Iterator[Record]:
    try:
        items = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield Record(name, error=f"not UTF-8 ({exc.reason} at byte {exc.start})")
        return
    except json.JSONDecodeError as exc:
        yield Record(name, error=f"not a valid JSON file ({exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno})")
        return
    for i, obj in enumerate(items):
        yield Record(f"{name}#{i}", obj)


def _eog_records(lines: Iterator[bytes], name: str) -> Iterator[Record]:
    for lineno, raw in enumerate(lines, start=1):
        source = f"{name}:{lineno}"
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line.strip():
            yield Record(source, error=EMPTY_LINE)
            continue
        try:
            yield Record(source, parse_eog_line(line, source))
        except DataError as exc:
            yield Record(source, error=str(exc).removeprefix(f"{source}: "))


def _raw_records(path: Path) -> Iterator[Record]:
    """Every record of a file (or stdin), unsliced."""
    with _open_bytes(path) as (fh, name):
        if is_eog_file(path):
            yield from _eog_records(fh, name)
            return
        first = fh.peek(64)[:64] if hasattr(fh, "peek") else b""
        if first.lstrip().startswith(b"["):
            yield from _json_list_records(fh.read(), name)
        else:
            yield from _jsonl_records(fh, name)


@contextlib.contextmanager
def _open_bytes(path: Path) -> Iterator[tuple[IO[bytes], str]]:
    """A file (or stdin for `-`) as bytes, with the name messages use; stdin is not closed."""
    if str(path) == STDIN:
        yield sys.stdin.buffer, "<stdin>"
        return
    with open(path, "rb") as fh:
        yield fh, str(path)


def count_records(spec: str | Path | DataSpec) -> int | None:
    """How many records `iter_records(spec)` yields (None for stdin): a cheap pass over the file."""
    spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    if str(spec.path) == STDIN:
        return None
    return sum(1 for _ in iter_records(spec)) if spec.start is not None or spec.stop is not None or not _is_jsonl(spec.path) \
        else _count_lines(spec.path)


def _is_jsonl(path: Path) -> bool:
    with open(path, "rb") as fh:
        return not is_eog_file(path) and not fh.read(64).lstrip().startswith(b"[")


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def iter_records(spec: str | Path | DataSpec) -> Iterator[Record]:
    """The records of a data spec (a file, `-` for stdin, optionally `[start:stop]` over its documents);
    blank lines are records with error EMPTY_LINE, not counted by the slice: one belongs to the slice
    when the document after it does."""
    spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    check_readable(spec.path)
    start, stop = spec.start, spec.stop
    if start is None and stop is None:
        yield from _raw_records(spec.path)
        return
    if (start or 0) < 0 or (stop or 0) < 0:
        if str(spec.path) == STDIN:
            raise DataError(f"{spec}: a negative slice needs a file, not stdin")
        n = sum(1 for r in _raw_records(spec.path) if r.error != EMPTY_LINE)
        start, stop, _ = slice(start, stop).indices(n)
    start = start or 0
    doc = 0
    for record in _raw_records(spec.path):
        if stop is not None and doc >= stop:
            return
        if doc >= start:
            yield record
        doc += record.error != EMPTY_LINE


TEXT_SUFFIXES = (".txt", ".text", ".md")  # the files of a folder read as plain text documents


def text_files(folder: Path) -> list[Path]:
    """The plain text files of a folder (recursively, sorted; hidden ones skipped)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def iter_text_records(spec: str | Path) -> Iterator[Record]:
    """Plain text: a file (or `-`) holds one document per line, a folder one document per text file (TEXT_SUFFIXES).
    Every line is a record (a blank one too, so output lines match input lines); bytes that are not UTF-8 make that
    line's record an error naming the byte, never a lost line. Values are {"text": ..., "title": ...}."""
    path = Path(str(spec))
    if str(spec) != STDIN and path.is_dir():
        for f in text_files(path):
            try:
                yield Record(str(f), {"text": f.read_bytes().decode("utf-8"), "title": f.stem})
            except UnicodeDecodeError as exc:
                yield Record(str(f), error=f"not UTF-8 ({exc.reason} at byte {exc.start})")
            except OSError as exc:
                yield Record(str(f), error=f"cannot be read ({exc.strerror or exc})")
        return
    check_readable(path)
    with _open_bytes(path) as (fh, name):
        for lineno, raw in enumerate(fh, start=1):  # binary lines end at \n only: U+2028 and friends stay inside
            try:
                yield Record(f"{name}:{lineno}", {"text": raw.decode("utf-8").rstrip("\r\n")})
            except UnicodeDecodeError as exc:
                yield Record(f"{name}:{lineno}", error=f"not UTF-8 ({exc.reason} at byte {exc.start})")


def count_text_records(spec: str | Path) -> int | None:
    path = Path(str(spec))
    if str(spec) == STDIN:
        return None
    return len(text_files(path)) if path.is_dir() else _count_lines(path)


def read_docred(path: Path, relation_vocab: list[str] | None = None) -> list[Document]:
    return load_documents(path, relation_vocab)


def read_eog(path: Path) -> list[Document]:
    """Read the preprocessed CDR/GDA format (see `parse_eog_line`); DataError at the first bad line."""
    return load_documents(path)


def parse_eog_line(line: str, source: str) -> Document:
    """One line of the preprocessed CDR/GDA format: id, text ('|' between sentences), then 17 fields per pair.

    Per pair: label (`1:CID:2`, `1:NR:2` or `not_include`), direction, cross-sentence flag, two
    closest spans, then for each argument: id, names ('|'), type, starts, ends, sentence ids (':').
    Positions are document-level word indices, end exclusive. `not_include` pairs are not scored,
    but their entities are kept. The label `NR` means no relation.
    """
    fields = line.split("\t")
    if len(fields) < 2 or (len(fields) - 2) % 17:
        raise data_error(source, f"expected id, text and 17 fields per pair, got {len(fields)} fields")
    title, text = fields[0], fields[1]
    sents = [s.split(" ") for s in text.split("|")]
    offsets, o = [], 0
    for s in sents:
        offsets.append(o)
        o += len(s)
    ent_index: dict[str, int] = {}
    entities: list[list[Mention]] = []
    pairs, relations = [], []

    def entity(q: list[str], a: int) -> int:
        eid = q[a]
        if eid in ent_index:
            return ent_index[eid]
        names = q[a + 1].split("|")
        etype = q[a + 2]
        try:
            starts, ends, sids = (list(map(int, q[a + k].split(":"))) for k in (3, 4, 5))
        except ValueError as exc:
            raise data_error(source, f"entity {eid}: bad positions ({exc})", title=title) from exc
        if not (len(starts) == len(ends) == len(sids)):
            raise data_error(source, f"entity {eid}: starts/ends/sentence ids differ in length", title=title)
        mentions = []
        for k, (s, e, sid) in enumerate(zip(starts, ends, sids)):
            if not 0 <= sid < len(sents):
                raise data_error(source, f"entity {eid}: mention {k}: sentence {sid} does not exist", title=title)
            ls, le = s - offsets[sid], e - offsets[sid]
            if not 0 <= ls < le <= len(sents[sid]):
                raise data_error(source, f"entity {eid}: mention {k}: span {s}-{e} is outside sentence {sid}", title=title)
            name = names[k] if k < len(names) else " ".join(sents[sid][ls:le])
            mentions.append(Mention(sid, ls, le, etype, name))
        ent_index[eid] = len(entities)
        entities.append(mentions)
        return ent_index[eid]

    for i in range(2, len(fields), 17):
        q = fields[i : i + 17]
        h, t = entity(q, 5), entity(q, 11)
        label = q[0]
        if label == "not_include":
            continue
        m = re.fullmatch(r"\d+:(.+):\d+", label)
        if not m:
            raise data_error(source, f"pair label {label!r} is not of the form 1:REL:2", title=title)
        if (h, t) not in pairs:
            pairs.append((h, t))
        if m[1] != "NR":
            relations.append(Relation(h, t, m[1]))
    return Document(title, sents, entities, relations, pairs, source)


def load_documents(spec: str | Path | DataSpec, relation_vocab: list[str] | None = None) -> list[Document]:
    """Every document of a data spec, validated; DataError (naming file, line, title and field) at the
    first bad one. Blank lines are skipped."""
    docs = []
    for record in iter_records(spec):
        if record.error == EMPTY_LINE:
            continue
        if record.error is not None:
            raise data_error(record.source, record.error)
        value = record.value
        if isinstance(value, Document):
            docs.append(value)
        elif is_dygie(value):  # SciERC and other DyGIE-format files
            docs.append(document_from_dygie(value, record.source))
        else:
            docs.append(document_from_docred(value, record.source, relation_vocab))
    return docs


def find_rel2id(data_path: Path) -> Path | None:
    """A `rel2id.json` beside the data file or in a `meta/` folder next to it (DocRED layouts)."""
    for cand in (data_path.parent / "rel2id.json", data_path.parent / "meta" / "rel2id.json", data_path.parent.parent / "meta" / "rel2id.json"):
        if cand.exists():
            return cand
    return None


def load_rel2id(path: Path) -> list[str]:
    """rel2id.json -> labels ordered by id; the id-0 label is the no-relation class."""
    mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    labels = [None] * len(mapping)
    for label, idx in mapping.items():
        if not isinstance(idx, int) or not 0 <= idx < len(mapping) or labels[idx] is not None:
            raise DataError(f"{path}: ids must be 0..{len(mapping) - 1}, each once (bad entry {label!r}: {idx!r})")
        labels[idx] = label
    return labels  # type: ignore[return-value]


def relation_vocab_for(train: list[Document], data_path: Path, rel2id: Path | None = None) -> list[str]:
    """The label list, no-relation class first: from rel2id.json (DocRED) or from the data (CDR/GDA)."""
    if rel2id is None and not is_eog_file(data_path):
        rel2id = find_rel2id(data_path)
    if rel2id is not None:
        vocab = load_rel2id(rel2id)
        missing = sorted({r.label for d in train for r in (d.relations or [])} - set(vocab))
        if missing:
            raise DataError(f"{rel2id}: labels in {data_path} are not in the vocabulary: {missing[:10]}")
        return vocab
    return [NA_LABEL] + sorted({r.label for d in train for r in (d.relations or [])})


def load_relation_names(path: Path | None) -> dict[str, str]:
    """rel_info.json (id -> readable name), if given."""
    if path is None:
        return {}
    return {str(k): str(v) for k, v in json.loads(Path(path).read_text(encoding="utf-8")).items()}
