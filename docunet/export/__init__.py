"""Export: ONNX graphs (encoder, head), precision variants, validation, manifest, TensorRT.

`export_checkpoint` runs a whole export; `load_exported` opens an export directory (after
`verify_manifest`) as ONNX Runtime callables for `docunet.modeling.run_docunet`.
"""
from .manifest import MANIFEST_FILE, ManifestError, verify_manifest
from .onnx_export import ExportError, ExportOptions, ExportResult, export_checkpoint, export_encoder, export_head
from .ort_backend import ExportedModel, OrtEncoder, OrtHead, load_exported
from .tensorrt_build import TensorRTUnavailable, TrtSettings, check_compatibility, require_tensorrt
from .validate import ParityError, ValidationReport, Validator, validate_export

__all__ = [
    "MANIFEST_FILE", "ManifestError", "verify_manifest", "ExportError", "ExportOptions", "ExportResult",
    "export_checkpoint", "export_encoder", "export_head", "ExportedModel", "OrtEncoder", "OrtHead", "load_exported",
    "TensorRTUnavailable", "TrtSettings", "check_compatibility", "require_tensorrt", "ParityError",
    "ValidationReport", "Validator", "validate_export",
]
