"""docunet: document-level relation extraction with DocuNet (train, export, serve)."""
from .documents import DataError, Document, Mention, PredictedRelation, Relation
from .models.docunet.config import DocuNetConfig


def __getattr__(name: str):
    if name == "Runtime":  # lazy: importing docunet stays light
        from .runtime import Runtime

        return Runtime
    raise AttributeError(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"
__all__ = ["DocuNetConfig", "DataError", "Document", "Mention", "PredictedRelation", "Relation", "Runtime", "__version__"]
