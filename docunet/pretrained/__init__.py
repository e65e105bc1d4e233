"""The models that ship inside the package, by name; the default serves `Runtime.load()` and `docunet-run`
without `--model`.

`redocred-minilm`: a pipeline bundle (PL-Marker NER, coreference rules, DocuNet; int8 for CPUs) trained on
the 500 labelled documents of Re-DocRED's dev_revised.json; its model card (MODEL_CARD.md beside it) says
how it was trained, how well it does and where it stops. `benchmarks/train_default.sh` rebuilds it."""
from __future__ import annotations

from pathlib import Path

from ..artifacts import is_checkpoint, is_export
from ..pipeline.bundle import is_pipeline

PRETRAINED_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "redocred-minilm"


class ModelNotFound(FileNotFoundError):
    """Neither a model directory nor the name of a shipped model."""


def _is_model(path: Path) -> bool:
    return is_pipeline(path) or is_export(path) or is_checkpoint(path)


def available() -> dict[str, Path]:
    """Shipped model name -> directory (those present in this installation)."""
    return {p.name: p for p in sorted(PRETRAINED_DIR.iterdir()) if p.is_dir() and _is_model(p)}


def resolve_model(name_or_dir: str | Path | None = None) -> Path:
    """A model directory: `name_or_dir` itself when it is a directory, the shipped model of that name,
    or the default model for None."""
    if name_or_dir is None:
        name_or_dir = DEFAULT_MODEL
        if DEFAULT_MODEL not in available():
            raise ModelNotFound(f"the default model {DEFAULT_MODEL!r} is not in this installation ({PRETRAINED_DIR / DEFAULT_MODEL}); "
                                "pass a model directory (a docunet-train checkpoint, a docunet-export directory or a bundle)")
    path = Path(name_or_dir)
    if path.exists():
        return path
    shipped = available()
    if str(name_or_dir) in shipped:
        return shipped[str(name_or_dir)]
    names = ", ".join(shipped) or "none in this installation"
    raise ModelNotFound(f"{name_or_dir}: no such model directory, and not a shipped model (shipped: {names})")
