"""The on-disk layout of docunet's artifacts: checkpoint and export directories, their file names,
hashes, and the export manifest.

A checkpoint is `config.json` (which names the model family in `model_type`), `model.safetensors`
and the tokenizer files. An export directory holds the graphs, `config.json`, the tokenizer files
and `manifest.json`. The manifest records the format version, the source checkpoint and its hash, every file's sha256
and size, each graph's input/output names, dtypes and shapes, the precision, the grid sizes, the
decoding settings (relations, markers, threshold, top-k), the tokenizer files and the versions of
the libraries used. `verify_manifest` is what every consumer calls before loading anything: it
raises `ManifestError`, naming the file, when a file is missing, changed, unlisted, or when a graph's
inputs/outputs or the model config disagree with the manifest.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Iterable

from .models import load_config

CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE = "config.json", "model.safetensors", "manifest.json"
FORMAT = "docunet-export/1"
SUPPORTED_FORMATS = (FORMAT,)
# Files of these kinds must be listed in the manifest when they are in the directory.
GUARDED_SUFFIXES = (".onnx", ".data", ".plan", ".engine", ".json", ".txt", ".model")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja")
# manifest "model" entries that describe rather than decide (readable names, where the encoder came from)
MANIFEST_UNCHECKED = frozenset({"relation_names", "encoder_name"})
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64", 16: "bfloat16"}


class ManifestError(RuntimeError):
    """An export directory that does not match its manifest (or has none)."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / WEIGHTS_FILE).exists() and (Path(path) / CONFIG_FILE).exists()


def is_export(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_FILE).exists()


def source_checkpoint(export_dir: str | Path) -> Path:
    """The checkpoint directory an export was made from, as its manifest records it (unverified)."""
    source = json.loads((Path(export_dir) / MANIFEST_FILE).read_text(encoding="utf-8")).get("source_checkpoint", {})
    return Path(source.get("path", "")) if isinstance(source, dict) else Path(str(source))


def int8_weight_bits(manifest: dict) -> int | None:
    """The int8 weight width an export was made with (7 or 8), None for exports without int8 weights."""
    if manifest.get("precision") != "int8":
        return None
    details = manifest.get("precision_details", {})
    if "int8_weight_bits" in details:
        return int(details["int8_weight_bits"])
    quant = details.get("encoder_quantization", {})  # exports made before the width was recorded
    return 7 if quant.get("reduce_range", False) else 8


def export_label(manifest: dict, served_bits: int | None = None) -> str:
    """fp32, fp16, int8 (encoder only) or int8-all (every graph), from an export manifest, with `-fused`
    when the encoder carries ONNX Runtime's fusions and `-w7` / `-w8` for the int8 weight width (every
    choice that changes the numbers is in the name). `served_bits`: the width the runtime serves when it
    differs from the export's (8-bit weights requantized at load: `-w7from8`)."""
    precision = manifest.get("precision", "fp32")
    graphs = manifest.get("graphs", {})
    int8_all = precision == "int8" and len(graphs) > 1 and all(g.get("precision") == "int8" for g in graphs.values())
    label = "int8-all" if int8_all else precision
    if manifest.get("precision_details", {}).get("encoder_fusion", {}).get("fused"):
        label += "-fused"
    bits = int8_weight_bits(manifest)
    if not bits:
        return label
    return f"{label}-w{served_bits}from{bits}" if served_bits and served_bits != bits else f"{label}-w{bits}"


def graph_io(path: Path) -> dict:
    """Input and output names, dtypes and shapes (ints for static dims, names for dynamic ones) of an ONNX graph."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def spec(v) -> dict:
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        return {"name": v.name, "dtype": _ONNX_DTYPES.get(t.elem_type, str(t.elem_type)), "shape": shape}

    inits = {i.name for i in model.graph.initializer}
    return {"inputs": [spec(v) for v in model.graph.input if v.name not in inits], "outputs": [spec(v) for v in model.graph.output],
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)}


def checkpoint_fingerprint(checkpoint: Path) -> dict:
    """The source checkpoint: path, a combined sha256 and the sha256 of its config and weights."""
    checkpoint = Path(checkpoint)
    files = {name: file_sha256(checkpoint / name) for name in (CONFIG_FILE, WEIGHTS_FILE)}
    combined = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    return {"path": str(checkpoint.resolve()), "sha256": combined, "files": files}


def library_versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("docunet", "torch", "transformers", "tokenizers", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "tensorrt"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:  # tensorrt wheels are split into several distributions; the module knows its version
        import tensorrt  # noqa: F401

        out["tensorrt"] = getattr(tensorrt, "__version__", out["tensorrt"])
    except Exception:
        pass
    return out


def file_entries(directory: Path, names: Iterable[str]) -> dict[str, dict]:
    return {name: {"sha256": file_sha256(directory / name), "bytes": (directory / name).stat().st_size} for name in sorted(set(names))}


def write_manifest(directory: Path, manifest: dict, files: Iterable[str]) -> dict:
    """Hash `files` (paths relative to `directory`) into the manifest and write it; returns the manifest written."""
    directory = Path(directory)
    manifest = {"format": FORMAT, **manifest, "files": file_entries(directory, files)}
    path = directory / MANIFEST_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return manifest


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise ManifestError(f"{path}: no manifest; this is not a docunet-export directory (or its export did not finish)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: unreadable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") not in SUPPORTED_FORMATS:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ManifestError(f"{path}: manifest format {found!r} is not supported (this docunet reads {', '.join(SUPPORTED_FORMATS)})")
    for key in ("files", "graphs", "config_file", "model"):
        if key not in manifest:
            raise ManifestError(f"{path}: manifest has no {key!r} entry")
    return manifest


def verify_manifest(directory: Path, check_unlisted: bool = True) -> dict:
    """Check every file against the manifest; returns the manifest or raises ManifestError naming the file."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    listed = manifest["files"]
    for name, entry in listed.items():
        path = directory / name
        if not path.is_file():
            raise ManifestError(f"{path}: listed in {MANIFEST_FILE} but missing")
        if path.stat().st_size != entry.get("bytes", path.stat().st_size):
            raise ManifestError(f"{path}: size {path.stat().st_size} does not match {MANIFEST_FILE} ({entry['bytes']} bytes); "
                                "the file was changed after export or belongs to another export")
        digest = file_sha256(path)
        if digest != entry.get("sha256"):
            raise ManifestError(f"{path}: sha256 {digest[:16]}... does not match {MANIFEST_FILE} ({str(entry.get('sha256'))[:16]}...); "
                                "the file was changed after export or belongs to another export")
    if check_unlisted:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if path.is_file() and path.suffix in GUARDED_SUFFIXES and rel not in listed and rel != MANIFEST_FILE \
                    and not rel.startswith("validation") and not rel.endswith(".timing.cache"):
                raise ManifestError(f"{path}: not listed in {MANIFEST_FILE}; a directory must hold exactly what its manifest lists")
    for role, graph in manifest["graphs"].items():
        path = directory / graph["file"]
        if graph["file"] not in listed:
            raise ManifestError(f"{path}: the {role} graph is not among the manifest's hashed files")
        actual = graph_io(path)
        for side in ("inputs", "outputs"):
            if actual[side] != graph.get(side):
                raise ManifestError(f"{path}: {side} {_brief(actual[side])} do not match {MANIFEST_FILE} ({_brief(graph.get(side))})")
    config_path = directory / manifest["config_file"]
    if manifest["config_file"] not in listed:
        raise ManifestError(f"{config_path}: the model config is not among the manifest's hashed files")
    try:
        config = load_config(config_path)
    except (OSError, ValueError, TypeError) as exc:
        raise ManifestError(f"{config_path}: unreadable model config: {exc}") from exc
    model = manifest["model"]
    for key in sorted(model):  # every decoding / layout setting the manifest records must match config.json
        if key in MANIFEST_UNCHECKED or not hasattr(config, key):
            continue
        if model[key] != getattr(config, key):
            raise ManifestError(f"{config_path}: {key} = {getattr(config, key)!r} does not match {MANIFEST_FILE} ({model[key]!r})")
    for name in manifest.get("tokenizer_files", []):
        if name not in listed:
            raise ManifestError(f"{directory / name}: tokenizer file is not among the manifest's hashed files")
    return manifest


def _brief(specs) -> str:
    if not isinstance(specs, list):
        return repr(specs)
    return ", ".join(f"{s.get('name')}:{s.get('dtype')}{s.get('shape')}" for s in specs if isinstance(s, dict))
