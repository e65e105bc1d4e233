"""Raw text to DocRED-style sentences of words, with each word's character offsets."""
from docunet.text.segment import (
    MAX_SENT_WORDS,
    SplitText,
    document_from_text,
    split_text,
)

__all__ = ["MAX_SENT_WORDS", "SplitText", "document_from_text", "split_text"]
