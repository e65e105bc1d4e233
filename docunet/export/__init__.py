"""Export: ONNX graphs of any model family (read from its export spec), precision variants,
validation against PyTorch, TensorRT checks and engines, and the manifest.

`export_checkpoint` runs a whole export. Opening an export directory is the runtime's job
(`docunet.runtime`), over the engines in `docunet.engines`.
"""
from ..artifacts import MANIFEST_FILE, ManifestError, verify_manifest
from .exporter import ExportOptions, ExportResult, export_checkpoint
from .graphs import ExportError, export_graph
from .tensorrt_check import check_compatibility
from .validate import ParityError, ValidationReport, Validator

__all__ = ["MANIFEST_FILE", "ExportError", "ExportOptions", "ExportResult", "ManifestError", "ParityError", "ValidationReport",
           "Validator", "check_compatibility", "export_checkpoint", "export_graph", "verify_manifest"]
