"""Readers: DocRED / Re-DocRED JSON (a list or JSONL) and CDR / GDA `*.data` files -> Documents.

A data spec may end in a python-style slice, `FILE[0:400]`, to take part of a file by document
order (the Re-DocRED dev file is split that way here). Relation vocabularies come from the data:
`rel2id.json` for DocRED-style data, the label set for CDR/GDA.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .documents import DataError, Document, Mention, Relation, document_from_docred

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
        if m and not Path(text).exists():
            to_int = lambda s: int(s) if s not in ("", None) else None  # noqa: E731
            return cls(Path(m["path"]), to_int(m["start"]), to_int(m["stop"]))
        return cls(Path(text))

    def __str__(self) -> str:
        if self.start is None and self.stop is None:
            return str(self.path)
        return f"{self.path}[{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}]"


def is_eog_file(path: Path) -> bool:
    return path.suffix == ".data"


def iter_json_records(path: Path) -> Iterator[tuple[str, object]]:
    """Yield (source, parsed object) for a JSON list file or a JSONL file; source names the line or index."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a valid JSON file: {exc}") from exc
        for i, obj in enumerate(data):
            yield f"{path}#{i}", obj
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            source = f"{path}:{lineno}"
            try:
                yield source, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DataError(f"{source}: not UTF-8 ({exc})") from exc
            except json.JSONDecodeError as exc:
                raise DataError(f"{source}: not valid JSON ({exc.msg} at column {exc.colno})") from exc


def read_docred(path: Path, relation_vocab: list[str] | None = None) -> list[Document]:
    return [document_from_docred(obj, src, relation_vocab) for src, obj in iter_json_records(path)]


def read_eog(path: Path) -> list[Document]:
    """Read the preprocessed CDR/GDA format: id, text ('|' between sentences), then 17 fields per pair.

    Per pair: label (`1:CID:2`, `1:NR:2` or `not_include`), direction, cross-sentence flag, two
    closest spans, then for each argument: id, names ('|'), type, starts, ends, sentence ids (':').
    Positions are document-level word indices, end exclusive. `not_include` pairs are not scored,
    but their entities are kept. The label `NR` means no relation.
    """
    docs = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            source = f"{path}:{lineno}"
            fields = line.split("\t")
            if len(fields) < 2 or (len(fields) - 2) % 17:
                raise DataError(f"{source}: expected id, text and 17 fields per pair, got {len(fields)} fields")
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
                    raise DataError(f"{source} (title {title!r}): entity {eid}: bad positions ({exc})") from exc
                if not (len(starts) == len(ends) == len(sids)):
                    raise DataError(f"{source} (title {title!r}): entity {eid}: starts/ends/sentence ids differ in length")
                mentions = []
                for k, (s, e, sid) in enumerate(zip(starts, ends, sids)):
                    if not 0 <= sid < len(sents):
                        raise DataError(f"{source} (title {title!r}): entity {eid}: mention {k}: sentence {sid} does not exist")
                    ls, le = s - offsets[sid], e - offsets[sid]
                    if not 0 <= ls < le <= len(sents[sid]):
                        raise DataError(f"{source} (title {title!r}): entity {eid}: mention {k}: span {s}-{e} is outside sentence {sid}")
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
                    raise DataError(f"{source} (title {title!r}): pair label {label!r} is not of the form 1:REL:2")
                if (h, t) not in pairs:
                    pairs.append((h, t))
                if m[1] != "NR":
                    relations.append(Relation(h, t, m[1]))
            docs.append(Document(title, sents, entities, relations, pairs, source))
    return docs


def load_documents(spec: str | Path | DataSpec, relation_vocab: list[str] | None = None) -> list[Document]:
    """Read a file (with an optional `[start:stop]` document slice) in whichever format it is."""
    spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    if not spec.path.exists():
        raise DataError(f"{spec.path}: no such file")
    docs = read_eog(spec.path) if is_eog_file(spec.path) else read_docred(spec.path, relation_vocab)
    return docs[spec.start : spec.stop]


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
