"""A pipeline bundle on disk: one directory with an entity model (`ner/`), a relation model (`relations/`),
each a checkpoint or an export with its own manifest, and `pipeline.json` saying which is which, the
coreference settings (method "none" for a sentence-level relation model, which takes every mention as an entity of
its own), the entity model's serve-time settings chosen for the bundle (`settings.ner`, e.g. its decoding's
prior_correction; a caller's own settings override them) and the hashes of both models' manifests or configs (so a
swapped model is caught)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import CONFIG_FILE, MANIFEST_FILE, is_checkpoint, is_export
from ..coref.rules import DEFAULT_RULES, CorefRules, with_rule_settings

PIPELINE_FILE = "pipeline.json"
FORMAT = "docunet-pipeline"
VERSION = 1
PARTS = ("ner", "relations")


class BundleError(ValueError):
    """A pipeline bundle that cannot be used, with a message naming the file and the field."""


@dataclass(frozen=True)
class Bundle:
    directory: Path
    ner: Path
    relations: Path
    coref: CorefRules | None  # None: no coreference (every mention an entity of its own)
    ner_settings: dict = field(default_factory=dict)  # serve-time settings of the entity model (Runtime settings=)


def is_pipeline(path: str | Path) -> bool:
    return (Path(path) / PIPELINE_FILE).is_file()


def _fingerprint(model_dir: Path) -> str:
    """sha256 of the file that identifies a model directory: its manifest (exports) or config (checkpoints)."""
    f = model_dir / (MANIFEST_FILE if is_export(model_dir) else CONFIG_FILE)
    return hashlib.sha256(f.read_bytes()).hexdigest()


def write_bundle(out_dir: Path, coref: CorefRules | None = DEFAULT_RULES, extra: dict | None = None,
                 ner_settings: dict | None = None) -> Path:
    """Write `pipeline.json` for the models already in out_dir/ner and out_dir/relations; `coref` None: no
    coreference step (a sentence-level relation model); `ner_settings`: the entity model's serve-time settings."""
    parts = {}
    for part in PARTS:
        d = out_dir / part
        if not (is_export(d) or is_checkpoint(d)):
            raise BundleError(f"{d}: not a checkpoint or export directory ({part} model of the pipeline)")
        parts[part] = {"path": part, "kind": "export" if is_export(d) else "checkpoint", "sha256": _fingerprint(d)}
    method = {"method": "none"} if coref is None else {"method": "rules", "rules": dataclasses.asdict(coref)}
    settings = {"settings": {"ner": dict(ner_settings)}} if ner_settings else {}
    manifest = {"format": FORMAT, "version": VERSION, **parts, "coref": method, **settings, **(extra or {})}
    (out_dir / PIPELINE_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir


def read_bundle(path: str | Path) -> Bundle:
    directory = Path(path)
    f = directory / PIPELINE_FILE
    try:
        manifest = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{f}: cannot be read as JSON ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BundleError(f"{f}: not a {FORMAT} version {VERSION} manifest (field format/version)")
    dirs = {}
    for part in PARTS:
        entry = manifest.get(part)
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise BundleError(f"{f}: field {part}.path is missing")
        d = (directory / entry["path"]).resolve()
        if not (is_export(d) or is_checkpoint(d)):
            raise BundleError(f"{f}: {part} model {d} is not a checkpoint or export directory (field {part}.path)")
        if entry.get("sha256") and entry["sha256"] != _fingerprint(d):
            raise BundleError(f"{f}: the {part} model in {d} is not the one this bundle was made with (field {part}.sha256)")
        dirs[part] = d
    settings = manifest.get("settings", {})
    if not isinstance(settings, dict) or not isinstance(settings.get("ner", {}), dict) or set(settings) - {"ner"}:
        raise BundleError(f"{f}: field settings must be {{\"ner\": {{KEY: VALUE, ...}}}}, not {settings!r}")
    ner_settings = dict(settings.get("ner", {}))
    coref = manifest.get("coref", {})
    if coref.get("method", "rules") == "none":
        return Bundle(directory, dirs["ner"], dirs["relations"], None, ner_settings)
    if coref.get("method", "rules") != "rules":
        raise BundleError(f"{f}: coreference method {coref.get('method')!r} is not known (field coref.method)")
    try:
        rules = with_rule_settings(CorefRules(), coref.get("rules", {}))
    except (ValueError, AttributeError) as exc:
        raise BundleError(f"{f}: field coref.rules: {exc}") from exc
    return Bundle(directory, dirs["ner"], dirs["relations"], rules, ner_settings)
