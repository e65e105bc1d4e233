"""docunet: document-level relation extraction with DocuNet (train, export, serve)."""
from .config import DocuNetConfig
from .documents import DataError, Document, Mention, Relation


def __getattr__(name: str):
    if name == "Runtime":  # lazy: importing docunet stays light
        from .runtime import Runtime

        return Runtime
    raise AttributeError(name)


__version__ = "0.1.0"
__all__ = ["DocuNetConfig", "DataError", "Document", "Mention", "Relation", "Runtime", "__version__"]
