"""docunet: document-level relation extraction with DocuNet (train, export, serve)."""
from .config import DocuNetConfig
from .documents import DataError, Document, Mention, Relation

__version__ = "0.1.0"
__all__ = ["DocuNetConfig", "DataError", "Document", "Mention", "Relation", "__version__"]
