"""One input item (a string, a `{"text": ...}` object, pre-tokenized `{"sents": [[words]]}`, a DocRED document or a
DyGIE / SciERC line) -> a Document, with errors that name the item's source and the field.

Text is the least trusted input: it must be a string, hold at least one word and at most MAX_TEXT_CHARS
characters; anything else in it (control characters, NUL, any script, emoji) is kept, word by word, with
exact character offsets (docunet.text.segment)."""
from __future__ import annotations

from typing import Any

from ..documents import Document, data_error, document_from_docred, document_from_dygie, is_dygie, json_kind
from .segment import document_from_text

MAX_TEXT_CHARS = 2_000_000  # one document; longer texts are refused (split them), not truncated


def _title(item: dict) -> str:
    for key in ("title", "id"):
        value = item.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return ""


def text_document(text: Any, source: str, title: str = "") -> Document:
    """A Document from raw text, or a DataError naming the source and the `text` field."""
    if not isinstance(text, str):
        raise data_error(source, f"expected a string, got {json_kind(text)}", "text", title or None)
    if len(text) > MAX_TEXT_CHARS:
        raise data_error(source, f"is {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} one document may have: "
                         "split it into several documents", "text", title or None)
    doc = document_from_text(text, title=title, source=source)
    if not doc.sents:
        raise data_error(source, "has no words (empty or whitespace only)", "text", title or None)
    return doc


def document_from_input(item: Any, source: str, min_entities: int = 0) -> Document:
    """str -> text; {"text", "title"/"id"} -> text; {"sents"} without "vertexSet" -> words without entities;
    {"sentences", "ner"} -> a DyGIE / SciERC document (each span an entity); anything else -> a DocRED document
    (document_from_docred). `min_entities`: what the model needs."""
    if isinstance(item, str):
        doc = text_document(item, source)
    elif isinstance(item, dict) and "text" in item and "sents" not in item:
        doc = text_document(item["text"], source, _title(item))
    elif isinstance(item, dict) and "sents" in item and "vertexSet" not in item:
        doc = document_from_docred({**item, "title": _title(item), "vertexSet": []}, source)
    elif is_dygie(item):
        doc = document_from_dygie(item, source)
    else:
        return document_from_docred(item, source, require_entities=min_entities)
    if doc.num_entities < min_entities:
        raise data_error(source, f"this model needs {min_entities} entities per document, given as a DocRED vertexSet; "
                         "for text without entities use an entity model (plmarker-ner) or a pipeline bundle", "vertexSet",
                         doc.title or None)
    return doc
