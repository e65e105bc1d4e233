"""Export a checkpoint of any model family: graphs, precision variant, validation, manifest.

`export_checkpoint` runs the steps in order, each reading the family's export spec:
1. the fp32 graphs (`graphs.export_graph` per GraphSpec, or reused from an fp32 export with
   `fp32_from`), fused for ONNX Runtime when asked;
2. their validation against the PyTorch model (an fp32 export fails on any logit difference above
   the tolerance or any different decoded prediction);
3. the precision variant (`variants.make_variant`: fp16 or int8) and its validation;
4. config + tokenizer files, the TensorRT compatibility check (and engines with `tensorrt=True`);
5. `manifest.json` with hashes of every file.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..artifacts import (CONFIG_FILE, MANIFEST_FILE, TOKENIZER_FILES, checkpoint_fingerprint, graph_io, library_versions,
                         verify_manifest, write_manifest)
from ..checkpoint import load_checkpoint
from ..engines.cpu import CpuInfo, cpu_info
from ..engines.int8_weights import open_7bit
from ..engines.onnxruntime import OrtGraph
from ..engines.tensorrt import TrtGraph, TrtSettings, build_engines, require_tensorrt
from ..inference import capture_graph_inputs
from ..metrics import train_facts
from ..models import family_of
from ..models.base import ExportSpec
from ..readers import load_documents
from .compact import SHARED_WEIGHTS_FILE
from .graphs import DEFAULT_OPSET, ExportError, export_graph
from .tensorrt_check import check_compatibility
from .validate import ParityError, Validator
from .variants import fuse_transformer_graph, graph_files, make_variant

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class ExportOptions:
    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    eval_data: str | None = None  # labelled data (FILE or FILE[start:stop]) for F1 of both models
    train_facts: str | None = None  # training data whose facts Ign F1 ignores
    sample_data: str | None = None  # extra documents for the parity check
    sample_limit: int = 16
    batch_size: int = 4
    threads: int | None = None
    tolerance: float = 1e-3
    tensorrt: bool = False
    trt: TrtSettings | None = None
    overwrite: bool = True  # replace a previous export in the output directory
    fp32_from: str | None = None  # reuse the graphs of an fp32 export of the same checkpoint (no re-export)
    int8_head: bool = False  # with int8: also quantize graphs with a static int8 policy (the head), calibrated on documents
    # with int8: True for 7-bit weights. The default, full 8-bit weights, fits CPUs with VNNI (AVX-VNNI, AVX512-VNNI,
    # AMX) and ARM; elsewhere they saturate and the runtime requantizes them to 7 bits at load (engines.int8_weights)
    int8_reduce_range: bool = False
    # with int8: bits of the embedding tables (word and position embeddings; most of an encoder's bytes):
    # 8 (per-row scales), 4 (blocks of 32 with fp16 scale and minimum) or 32 (left in fp32)
    int8_embedding_bits: int = 8
    # ONNX Runtime fusions of transformer graphs (fusion.py; contrib ops, so not for TensorRT). None: on for int8 only
    ort_fusions: bool | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ExportError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.ort_fusions is None:
            self.ort_fusions = self.precision == "int8" and not self.tensorrt
        if self.ort_fusions and (self.tensorrt or self.precision == "fp16"):
            raise ExportError("ONNX Runtime fusions (--ort-fusions) put contrib ops into the encoder graph, which TensorRT "
                              "cannot parse and the fp16 converter does not handle; use them with fp32 or int8 exports "
                              "for ONNX Runtime")


@dataclass
class ExportResult:
    directory: Path
    manifest: dict
    files: dict[str, int]  # relative path -> bytes
    seconds: float
    stage_seconds: dict = field(default_factory=dict)


class Stages:
    """Progress reporting: `stage(name)` starts a step, `advance(stage, n, total)` reports inner progress."""

    def __init__(self, callback: Callable[[str, int, int], None] | None = None):
        self.callback = callback
        self.times: dict[str, float] = {}
        self._current: str | None = None
        self._t0 = 0.0

    def stage(self, name: str) -> None:
        self.close()
        self._current, self._t0 = name, time.perf_counter()
        if self.callback:
            self.callback(name, 0, 0)

    def advance(self, stage: str, n: int, total: int) -> None:
        if self.callback:
            self.callback(stage, n, total)

    def close(self) -> None:
        if self._current is not None:
            self.times[self._current] = round(time.perf_counter() - self._t0, 3)
            self._current = None


def prepare_output_dir(out_dir: Path, overwrite: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = list(out_dir.iterdir())
    if not entries:
        return
    previous = (out_dir / MANIFEST_FILE).exists() or (out_dir / "validation_failed.json").exists()
    if not previous and not any(p.suffix == ".onnx" for p in entries):
        raise ExportError(f"{out_dir}: not empty and not a previous export; choose an empty or new directory")
    if not overwrite:
        raise ExportError(f"{out_dir}: holds a previous export (pass overwrite to replace it)")
    for p in entries:  # a previous export: remove what an export writes
        if p.is_dir() and p.name == "tensorrt":
            shutil.rmtree(p)
        elif p.is_file() and (p.suffix in (".onnx", ".data", ".plan", ".engine") or p.name in (MANIFEST_FILE, CONFIG_FILE, SHARED_WEIGHTS_FILE)
                              or p.name in TOKENIZER_FILES or p.name.startswith("validation")):
            p.unlink()


def copy_support_files(checkpoint: Path, out_dir: Path, featurizer) -> list[str]:
    """config.json and the tokenizer files (written from the loaded tokenizer when the checkpoint has none)."""
    shutil.copy2(checkpoint / CONFIG_FILE, out_dir / CONFIG_FILE)
    copied = []
    for name in TOKENIZER_FILES:
        if (checkpoint / name).is_file():
            shutil.copy2(checkpoint / name, out_dir / name)
            copied.append(name)
    if not copied:
        featurizer.tokenizer.save_pretrained(str(out_dir))
        copied = [name for name in TOKENIZER_FILES if (out_dir / name).is_file()]
    return copied


def reuse_fp32_graphs(spec: ExportSpec, source: Path, checkpoint: Path, work: Path, opset: int) -> None:
    """Copy the graphs of a verified fp32 export of this very checkpoint into `work`."""
    manifest = verify_manifest(source)
    if manifest.get("precision") != "fp32":
        raise ExportError(f"{source}: --fp32-from needs an fp32 export, this one is {manifest.get('precision')!r}")
    theirs = manifest.get("source_checkpoint", {}).get("sha256")
    ours = checkpoint_fingerprint(checkpoint)["sha256"]
    if theirs != ours:
        raise ExportError(f"{source}: exported from another checkpoint (sha256 {str(theirs)[:12]}..., "
                          f"{checkpoint} has {ours[:12]}...)")
    if manifest.get("opset") != opset:
        raise ExportError(f"{source}: exported with opset {manifest.get('opset')}, this export asks for {opset}")
    for g in spec.graphs:
        for f in graph_files(source, manifest["graphs"][g.name]["file"]):
            shutil.copy2(source / f, work / f)


def make_fp32_graphs(spec: ExportSpec, model, checkpoint: Path, work: Path, options: ExportOptions, stages: Stages) -> dict:
    """The fp32 graphs in `work` (exported, or reused with `fp32_from`), fused for ONNX Runtime when asked;
    returns what the fusions did, per graph."""
    if options.fp32_from:
        stages.stage("reuse fp32 graphs")
        reuse_fp32_graphs(spec, Path(options.fp32_from), checkpoint, work, options.opset)
    else:
        for g in spec.graphs:
            stages.stage(f"export {g.name}")
            export_graph(g, model, model.config, work / g.file, options.opset)
    fused: dict = {}
    for g in spec.graphs if options.ort_fusions else ():
        if g.transformer is not None:
            stages.stage(f"fuse {g.name} for onnxruntime")
            tcfg = g.transformer(model).config
            fused[f"{g.name}_fusion"] = fuse_transformer_graph(work / g.file, tcfg.num_attention_heads, tcfg.hidden_size,
                                                              attention=g.ort_fusion == "encoder")
    return fused


def ort_graphs(spec: ExportSpec, directory: Path, threads: int | None, seven_bit: bool = False) -> dict[str, OrtGraph]:
    """The graphs in ONNX Runtime sessions; `seven_bit`: int8 weights requantized to 7 bits, as the runtime
    serves 8-bit ones on CPUs without VNNI."""
    return {g.name: open_7bit(directory / g.file, threads)[0] if seven_bit else OrtGraph(directory / g.file, threads)
            for g in spec.graphs}


def int8_validation_weights(options: ExportOptions, cpu: CpuInfo) -> dict | None:
    """The int8 weights the validation runs: those the runtime would serve on this CPU (`int8_weights="auto"`)."""
    if options.precision != "int8":
        return None
    bits = 7 if options.int8_reduce_range else 8
    served = min(bits, cpu.int8_weight_bits)
    return {"weight_bits": served, "requantized_from": bits if served != bits else None, "cpu": cpu.describe()}


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, options: ExportOptions | None = None,
                      progress: Callable[[str, int, int], None] | None = None) -> ExportResult:
    """Export, validate and describe a checkpoint; see the module docstring. Raises ParityError when
    an fp32 graph does not reproduce the PyTorch model (the directory then has no manifest)."""
    options = options or ExportOptions()
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    stages = Stages(progress)
    t_start = time.perf_counter()
    settings = options.trt or TrtSettings()
    if options.tensorrt:
        if options.precision == "int8":
            raise ExportError("--tensorrt with --precision int8: the int8 graph uses ONNX Runtime's dynamic quantization "
                              "(MatMulInteger), which TensorRT cannot build; TensorRT needs explicit Q/DQ nodes. "
                              "Use --precision fp16 (or fp32) for TensorRT engines.")
        require_tensorrt(check_gpu=True)  # fail before any work when TensorRT (or its GPU) is missing
    stages.stage("load checkpoint")
    model, featurizer = load_checkpoint(checkpoint)
    cfg = model.config
    family = family_of(cfg)
    spec = family.export_spec()
    labels = getattr(cfg, "relations", None)
    eval_docs = load_documents(options.eval_data, labels) if options.eval_data else None
    facts = train_facts(load_documents(options.train_facts)) if options.train_facts else None
    sample_docs = load_documents(options.sample_data, labels)[: options.sample_limit] if options.sample_data else []
    prepare_output_dir(out_dir, options.overwrite)

    with tempfile.TemporaryDirectory(prefix="docunet-export-") as tmp:
        work = Path(tmp)
        fused = make_fp32_graphs(spec, model, checkpoint, work, options, stages)

        validator = Validator(family, model, featurizer, sample_docs, eval_docs, facts, options.batch_size, stages.advance)
        stages.stage("validate fp32 graphs")
        base = validator.check(ort_graphs(spec, work, options.threads), "fp32", options.tolerance,
                               with_eval=options.precision == "fp32")
        if not base.passed:
            out_dir.joinpath("validation_failed.json").write_text(json.dumps(base.as_dict(), indent=2, default=str) + "\n",
                                                                 encoding="utf-8")
            raise ParityError("the fp32 ONNX graphs do not reproduce the PyTorch model: " + "; ".join(base.failures)
                              + f" (report: {out_dir / 'validation_failed.json'})")
        if options.precision != "fp32":
            stages.stage(f"convert to {options.precision}")

        def calibrate(graph: str) -> list[dict]:
            docs = sample_docs or eval_docs or validator.docs
            return capture_graph_inputs(family, model, featurizer, docs, graph, spec.graph(graph).inputs, options.batch_size)

        precision_info = make_variant(spec, options.precision, work, out_dir, fused, options.int8_reduce_range,
                                      options.int8_head, calibrate, options.int8_embedding_bits)
        report = base
        if options.precision != "fp32":
            stages.stage(f"validate {options.precision} graphs")
            served = int8_validation_weights(options, cpu_info())
            if served:
                precision_info["int8_validated_with"] = served
            report = validator.check(ort_graphs(spec, out_dir, options.threads, bool(served and served["requantized_from"])),
                                     options.precision, options.tolerance, with_eval=True)
            report.base_fp32 = base.samples

    stages.stage("copy config and tokenizer")
    tokenizer_files = copy_support_files(checkpoint, out_dir, featurizer)

    stages.stage("check TensorRT compatibility")
    profiles = spec.trt_profiles(cfg, settings)
    graphs = {g.name: {"file": g.file, **graph_io(out_dir / g.file), "dynamic_axes": _axes_json(g.axes),
                       "precision": precision_info[g.name]} for g in spec.graphs}
    compat = {role: check_compatibility(out_dir / g["file"], profiles[role]) for role, g in graphs.items()}
    engines = None
    if options.tensorrt:
        stages.stage("build TensorRT engines")
        engines = build_engines(out_dir, {r: g["file"] for r, g in graphs.items()}, profiles, settings, progress=stages.advance)
        trt_report = _validate_engines(validator, out_dir, engines, options, stages, with_eval=bool(eval_docs))
        if trt_report is not None:
            engines["validation"] = trt_report

    stages.stage("write manifest")
    files = sorted({f for g in spec.graphs for f in graph_files(out_dir, g.file)}) + [CONFIG_FILE] + tokenizer_files
    if engines:
        files += [e["file"] for e in engines["engines"].values()]
    manifest = describe_export(spec, cfg, checkpoint, options, precision_info, graphs, report, tokenizer_files,
                               {"compatibility": compat, "profiles": profiles, "settings": asdict(settings), "engines": engines})
    stages.close()
    manifest["export_seconds"] = round(time.perf_counter() - t_start, 3)
    manifest["stage_seconds"] = dict(stages.times)
    manifest = write_manifest(out_dir, manifest, files)
    sizes = {f: (out_dir / f).stat().st_size for f in sorted(set(files))}
    return ExportResult(out_dir, manifest, sizes, time.perf_counter() - t_start, dict(stages.times))


def describe_export(spec: ExportSpec, cfg, checkpoint: Path, options: ExportOptions, precision_info: dict, graphs: dict,
                    report, tokenizer_files: list[str], tensorrt: dict) -> dict:
    """The manifest's content (write_manifest adds the format and every file's hash)."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source_checkpoint": checkpoint_fingerprint(checkpoint),
        "precision": options.precision,
        "precision_details": precision_info,
        "opset": options.opset,
        "exporter": "torch.onnx.export(dynamo=True)",
        "options": {"eval_data": options.eval_data, "train_facts": options.train_facts, "sample_data": options.sample_data,
                    "batch_size": options.batch_size, "tolerance": options.tolerance, "fp32_from": options.fp32_from},
        "graphs": graphs,
        "config_file": CONFIG_FILE,
        "model": spec.manifest_model(cfg),
        **spec.manifest_extras(cfg, report),
        "tokenizer_files": tokenizer_files,
        "versions": library_versions(),
        "validation": report.as_dict(),
        "tensorrt": tensorrt,
    }


def _validate_engines(validator: Validator, out_dir: Path, engines: dict, options: ExportOptions, stages: Stages,
                      with_eval: bool) -> dict | None:
    """The engines' own parity report (recorded, not enforced); None without a CUDA device."""
    if not torch.cuda.is_available():
        return None
    stages.stage("validate TensorRT engines")
    graphs = {role: TrtGraph(out_dir / e["file"]) for role, e in engines["engines"].items()}
    return validator.check(graphs, f"tensorrt-{options.precision}", options.tolerance, with_eval=with_eval).as_dict()


def _axes_json(axes) -> dict:
    return {name: {str(k): v for k, v in dims.items()} for name, dims in axes.items()}
