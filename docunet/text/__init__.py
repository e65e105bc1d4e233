"""Raw text to DocRED-style sentences of words, with each word's character offsets."""
from docunet.text.inputs import MAX_TEXT_CHARS, document_from_input, text_document
from docunet.text.segment import (
    MAX_SENT_WORDS,
    SplitText,
    document_from_text,
    split_text,
)

__all__ = ["MAX_SENT_WORDS", "MAX_TEXT_CHARS", "SplitText", "document_from_input", "document_from_text", "split_text",
           "text_document"]
