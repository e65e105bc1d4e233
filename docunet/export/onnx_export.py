"""Export a checkpoint as two ONNX graphs (encoder, head), validate them, and write the directory.

Graphs (torch.onnx dynamo exporter, opset 18 by default):
- `encoder.onnx`: input_ids [windows, seq] int32, attention_mask [windows, seq] int32,
  query_pos [windows, queries] int32 -> token_states [windows, seq, d] float32,
  query_attn [windows, H, queries, seq] float32.
- `head.onnx`: token_states [batch, doc_len, d], entity_emb [batch, grid, d],
  entity_attn [batch, grid, H, doc_len] float32, entity_mask [batch, grid] bool ->
  logits [batch, grid, grid, R] float32.
The grid axis is dynamic: one head graph serves N = 42 and every larger grid size (42 + k * 14);
the export validates at least two grid sizes. Every declared dynamic axis is checked to be symbolic
in the written graph. `export_checkpoint` runs the whole export: graphs, precision variant,
validation against PyTorch, TensorRT compatibility check (and engines with `tensorrt=True`),
config + tokenizer files and the manifest.
"""
from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..checkpoint import CONFIG_FILE, load_checkpoint
from ..config import DocuNetConfig
from ..modeling import DocuNet
from .manifest import (MANIFEST_FILE, TOKENIZER_FILES, checkpoint_fingerprint, graph_io, library_versions,
                       write_manifest)

ENCODER_FILE, HEAD_FILE = "encoder.onnx", "head.onnx"
ENCODER_INPUTS = ("input_ids", "attention_mask", "query_pos")
ENCODER_OUTPUTS = ("token_states", "query_attn")
HEAD_INPUTS = ("token_states", "entity_emb", "entity_attn", "entity_mask")
HEAD_OUTPUTS = ("logits",)
ENCODER_AXES = {"input_ids": {0: "windows", 1: "seq"}, "attention_mask": {0: "windows", 1: "seq"},
                "query_pos": {0: "windows", 1: "queries"}}
HEAD_AXES = {"token_states": {0: "batch", 1: "doc_len"}, "entity_emb": {0: "batch", 1: "grid"},
             "entity_attn": {0: "batch", 1: "grid", 3: "doc_len"}, "entity_mask": {0: "batch", 1: "grid"}}
DEFAULT_OPSET = 18
PRECISIONS = ("fp32", "fp16", "int8")
EXTERNAL_DATA_BYTES = 1_800_000_000  # beyond this the weights go to a `.data` file next to the graph


class ExportError(RuntimeError):
    """The export cannot proceed (bad input, non-dynamic axis, unusable output directory...)."""


class EncoderForExport(nn.Module):
    """The encoder with int32 query positions (every graph input is int32, as TensorRT prefers)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, query_pos: torch.Tensor):
        return self.encoder(input_ids, attention_mask, query_pos.long())


def max_sequence_length(config: DocuNetConfig) -> int:
    limit = int(config.encoder_config.get("max_position_embeddings", config.max_window))
    return min(config.max_window, limit)


def encoder_example(config: DocuNetConfig, vocab_size: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    W, T, Q = 3, min(24, max_sequence_length(config)), 5
    ids = torch.randint(0, vocab_size, (W, T), generator=g, dtype=torch.int32)
    lengths = torch.tensor([T, T - 3, T - 7])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.int32)
    query_pos = torch.randint(0, T - 7, (W, Q), generator=g, dtype=torch.int32)
    return ids, mask, query_pos


def head_example(config: DocuNetConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    B, L, N, d, H = 2, 29, config.grid_size, config.hidden_size, config.num_heads
    token_states = torch.randn(B, L, d, generator=g)
    entity_emb = torch.randn(B, N, d, generator=g)
    entity_attn = torch.rand(B, N, H, L, generator=g).softmax(-1)
    entity_mask = torch.arange(N)[None, :] < torch.tensor([[5], [min(N, 9)]])
    return token_states, entity_emb, entity_attn, entity_mask


@contextlib.contextmanager
def _quiet_exporter(enabled: bool = True):
    """Silence the exporter's step printing, warnings and logging (the CLI has its own progress display)."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "torch.fx", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _torch_export(module: nn.Module, args: tuple, path: Path, input_names, output_names, axes: dict,
                  dims: dict, opset: int, quiet: bool = True) -> None:
    dynamic_shapes = tuple({axis: dims[name] for axis, name in axes[n].items()} for n in input_names)
    big = sum(p.numel() * p.element_size() for p in module.parameters()) > EXTERNAL_DATA_BYTES
    with _quiet_exporter(quiet), torch.no_grad():
        program = torch.onnx.export(module, args, dynamo=True, input_names=list(input_names), output_names=list(output_names),
                                    dynamic_shapes=dynamic_shapes, opset_version=opset, external_data=big, verbose=False)
        program.save(str(path), external_data=big)


def check_dynamic_axes(path: Path, axes: dict[str, dict[int, str]]) -> dict[str, list]:
    """Every declared dynamic axis must be symbolic in the written graph; axes sharing a name share a symbol."""
    io_spec = graph_io(path)
    shapes = {spec["name"]: spec["shape"] for spec in io_spec["inputs"]}
    symbols: dict[str, str] = {}
    for name, dims in axes.items():
        if name not in shapes:
            raise ExportError(f"{path}: input {name!r} is missing (inputs: {sorted(shapes)})")
        for axis, label in dims.items():
            dim = shapes[name][axis]
            if not isinstance(dim, str) or dim == "?":
                raise ExportError(f"{path}: axis {axis} ({label}) of input {name!r} was exported as {dim!r}, not as a dynamic dimension")
            if symbols.setdefault(label, dim) != dim:
                raise ExportError(f"{path}: axis {label!r} has two different symbols ({symbols[label]!r}, {dim!r}) across inputs")
    return shapes


@contextlib.contextmanager
def plain_attention(transformer: nn.Module):
    """Trace the transformer with its plain (eager) attention: matmul, mask, softmax, matmul.

    Exported from sdpa, every layer carries the decomposition's guard against fully masked rows
    (IsNaN + Where over the [W, H, T, T] scores), which took about 14% of the int8 encoder's time
    on CPU; ONNX Runtime fuses the plain form instead. Same values either way (the validation
    step compares the graph with the PyTorch model)."""
    cfg = transformer.config
    before = cfg._attn_implementation
    set_impl = getattr(transformer, "set_attn_implementation", None) or (lambda impl: setattr(cfg, "_attn_implementation", impl))
    set_impl("eager")
    try:
        yield
    finally:
        set_impl(before)


def export_encoder(model: DocuNet, path: Path, opset: int = DEFAULT_OPSET, quiet: bool = True) -> dict:
    """Write the encoder graph (int32 inputs, dynamic windows/seq/queries axes) and check its axes."""
    cfg = model.config
    vocab = int(cfg.encoder_config.get("vocab_size", 100))
    Dim = torch.export.Dim
    dims = {"windows": Dim("windows", min=1, max=65536), "seq": Dim("seq", min=2, max=max_sequence_length(cfg)),
            "queries": Dim("queries", min=1, max=65536)}
    module = EncoderForExport(model.encoder).eval()
    with plain_attention(model.encoder.transformer):
        _torch_export(module, encoder_example(cfg, vocab), path, ENCODER_INPUTS, ENCODER_OUTPUTS, ENCODER_AXES, dims, opset, quiet)
    check_dynamic_axes(path, ENCODER_AXES)
    return graph_io(path)


def export_head(model: DocuNet, path: Path, opset: int = DEFAULT_OPSET, quiet: bool = True) -> dict:
    """Write the head graph (dynamic batch/doc_len/grid axes) and check its axes."""
    cfg = model.config
    Dim = torch.export.Dim
    dims = {"batch": Dim("batch", min=1, max=65536), "doc_len": Dim("doc_len", min=2, max=1 << 20),
            "grid": Dim("grid", min=4, max=4096)}
    _torch_export(model.head.eval(), head_example(cfg), path, HEAD_INPUTS, HEAD_OUTPUTS, HEAD_AXES, dims, opset, quiet)
    check_dynamic_axes(path, HEAD_AXES)
    return graph_io(path)


# ----------------------------------------------------------------------------------------------
# The whole export
# ----------------------------------------------------------------------------------------------
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
    trt: object | None = None  # tensorrt_build.TrtSettings
    overwrite: bool = True  # replace a previous export in the output directory
    fp32_from: str | None = None  # reuse the graphs of an fp32 export of the same checkpoint (no re-export)
    int8_head: bool = False  # with int8: also quantize the head (static QDQ, calibrated on the eval/sample documents)
    # with int8: 7-bit weights, which do not saturate on CPUs without VNNI (precision.quantize_encoder_int8); False for
    # full 8-bit weights when the serving CPUs have VNNI (AVX-VNNI, AVX512-VNNI, AMX) or are ARM
    int8_reduce_range: bool = True
    # ONNX Runtime fusions of the encoder (fusion.py; contrib ops, so not for TensorRT). None: on for int8 only
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
    entries = [p for p in out_dir.iterdir()]
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
        elif p.is_file() and (p.suffix in (".onnx", ".data", ".plan", ".engine") or p.name in (MANIFEST_FILE, CONFIG_FILE)
                              or p.name in TOKENIZER_FILES or p.name.startswith("validation")):
            p.unlink()


def _copy_support_files(checkpoint: Path, out_dir: Path, featurizer) -> list[str]:
    shutil.copy2(checkpoint / CONFIG_FILE, out_dir / CONFIG_FILE)
    copied = []
    for name in TOKENIZER_FILES:
        if (checkpoint / name).is_file():
            shutil.copy2(checkpoint / name, out_dir / name)
            copied.append(name)
    if not copied:  # a checkpoint without tokenizer files on disk: write them from the loaded tokenizer
        featurizer.tokenizer.save_pretrained(str(out_dir))
        copied = [name for name in TOKENIZER_FILES if (out_dir / name).is_file()]
    return copied


def _graph_files(directory: Path, name: str) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name == name or p.name.startswith(name + ".")]


def _reuse_fp32_graphs(source: Path, checkpoint: Path, work: Path, opset: int) -> None:
    """Copy the graphs of a verified fp32 export of this very checkpoint into `work`."""
    from .manifest import verify_manifest

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
    for role in ("encoder", "head"):
        name = manifest["graphs"][role]["file"]
        for f in _graph_files(source, name):
            shutil.copy2(source / f, work / f)


def _fuse_encoder(path: Path, cfg: DocuNetConfig) -> dict:
    """Replace the encoder graph at `path` by its ONNX Runtime-fused form (in place); a graph that is
    already fused (reused with --fp32-from) or that does not match the fusion patterns stays as it is."""
    import onnx

    from .fusion import CONTRIB_DOMAIN, fuse_encoder

    if any(n.domain == CONTRIB_DOMAIN for n in onnx.load(str(path), load_external_data=False).graph.node):
        return {"skipped": "the graph is already fused"}
    try:
        model, info = fuse_encoder(path, cfg.num_heads, cfg.hidden_size)
    except ValueError as exc:
        warnings.warn(f"encoder left unfused: {exc}")
        return {"skipped": str(exc)}
    for f in _graph_files(path.parent, path.name):
        (path.parent / f).unlink()
    external = model.ByteSize() > EXTERNAL_DATA_BYTES
    onnx.save(model, str(path), save_as_external_data=external, location=path.name + ".data" if external else None)
    return info


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, options: ExportOptions | None = None,
                      progress: Callable[[str, int, int], None] | None = None) -> ExportResult:
    """Export, validate and describe a checkpoint; see the module docstring. Raises ParityError when
    an fp32 graph does not reproduce the PyTorch model (the directory then has no manifest)."""
    from ..metrics import train_facts
    from ..readers import load_documents
    from . import precision as prec
    from . import tensorrt_build as trtb
    from .ort_backend import OrtEncoder, OrtHead
    from .validate import ParityError, Validator

    options = options or ExportOptions()
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    stages = Stages(progress)
    t_start = time.perf_counter()
    settings = options.trt or trtb.TrtSettings()
    if options.tensorrt:
        if options.precision == "int8":
            raise ExportError("--tensorrt with --precision int8: the int8 graph uses ONNX Runtime's dynamic quantization "
                              "(MatMulInteger), which TensorRT cannot build; TensorRT needs explicit Q/DQ nodes. "
                              "Use --precision fp16 (or fp32) for TensorRT engines.")
        trtb.require_tensorrt(check_gpu=True)  # fail before any work when TensorRT (or its GPU) is missing
    stages.stage("load checkpoint")
    model, featurizer = load_checkpoint(checkpoint)
    cfg = model.config
    eval_docs = load_documents(options.eval_data, cfg.relations) if options.eval_data else None
    facts = train_facts(load_documents(options.train_facts)) if options.train_facts else None
    sample_docs = load_documents(options.sample_data, cfg.relations)[: options.sample_limit] if options.sample_data else []
    prepare_output_dir(out_dir, options.overwrite)

    with tempfile.TemporaryDirectory(prefix="docunet-export-") as tmp:
        work = Path(tmp)
        if options.fp32_from:
            stages.stage("reuse fp32 graphs")
            _reuse_fp32_graphs(Path(options.fp32_from), checkpoint, work, options.opset)
        else:
            stages.stage("export encoder")
            export_encoder(model, work / ENCODER_FILE, options.opset)
            stages.stage("export head")
            export_head(model, work / HEAD_FILE, options.opset)
        fusion_info = None
        if options.ort_fusions:
            stages.stage("fuse encoder for onnxruntime")
            fusion_info = _fuse_encoder(work / ENCODER_FILE, cfg)

        validator = Validator(model, featurizer, sample_docs, eval_docs, facts, options.batch_size, stages.advance)
        stages.stage("validate fp32 graphs")
        base = validator.check(OrtEncoder(work / ENCODER_FILE, options.threads), OrtHead(work / HEAD_FILE, options.threads),
                               "fp32", options.tolerance, with_eval=options.precision == "fp32")
        if not base.passed:
            out_dir.joinpath("validation_failed.json").write_text(_json(base.as_dict()), encoding="utf-8")
            raise ParityError("the fp32 ONNX graphs do not reproduce the PyTorch model: " + "; ".join(base.failures)
                              + f" (report: {out_dir / 'validation_failed.json'})")

        precision_info: dict = {"encoder": "fp32", "head": "fp32"}
        if fusion_info is not None:
            precision_info["encoder_fusion"] = fusion_info
        if options.precision == "fp32":
            for name in (ENCODER_FILE, HEAD_FILE):
                for f in _graph_files(work, name):
                    shutil.move(str(work / f), out_dir / f)
            report = base
        else:
            stages.stage(f"convert to {options.precision}")
            if options.precision == "fp16":
                precision_info = {"encoder": "fp16", "head": "fp16",
                                  "encoder_conversion": prec.export_fp16(work / ENCODER_FILE, out_dir / ENCODER_FILE, "encoder"),
                                  "head_conversion": prec.export_fp16(work / HEAD_FILE, out_dir / HEAD_FILE, "head"),
                                  "kept_fp32": "LayerNormalization, Softmax, ReduceLogSumExp and reductions; the encoder's "
                                               "attention-row recomputation; the head's feature map, grouped bilinear and "
                                               "output (final logits)"}
            else:
                precision_info = {**precision_info, "encoder": "int8", "head": "fp32",
                                  "encoder_quantization": prec.quantize_encoder_int8(work / ENCODER_FILE, out_dir / ENCODER_FILE,
                                                                                         options.int8_reduce_range)}
                if options.int8_head:
                    calib_docs = sample_docs or eval_docs or validator.docs
                    calibration = prec.collect_head_inputs(model, featurizer, calib_docs, options.batch_size)
                    precision_info["head"] = "int8"
                    precision_info["head_quantization"] = prec.quantize_head_int8(work / HEAD_FILE, out_dir / HEAD_FILE, calibration,
                                                                                      options.int8_reduce_range)
                else:
                    for f in _graph_files(work, HEAD_FILE):
                        shutil.move(str(work / f), out_dir / f)
            stages.stage(f"validate {options.precision} graphs")
            report = validator.check(OrtEncoder(out_dir / ENCODER_FILE, options.threads), OrtHead(out_dir / HEAD_FILE, options.threads),
                                     options.precision, options.tolerance, with_eval=True)
            report.base_fp32 = base.samples

    stages.stage("copy config and tokenizer")
    tokenizer_files = _copy_support_files(checkpoint, out_dir, featurizer)

    stages.stage("check TensorRT compatibility")
    profiles = trtb.plan_profiles(cfg, settings)
    graphs = {"encoder": {"file": ENCODER_FILE, **graph_io(out_dir / ENCODER_FILE), "dynamic_axes": _axes_json(ENCODER_AXES),
                          "precision": precision_info["encoder"]},
              "head": {"file": HEAD_FILE, **graph_io(out_dir / HEAD_FILE), "dynamic_axes": _axes_json(HEAD_AXES),
                       "precision": precision_info["head"]}}
    compat = {role: trtb.check_compatibility(out_dir / g["file"], profiles[role]) for role, g in graphs.items()}
    engines = None
    if options.tensorrt:
        stages.stage("build TensorRT engines")
        engines = trtb.build_engines(out_dir, {r: g["file"] for r, g in graphs.items()}, profiles, settings,
                                     progress=stages.advance)
        if torch.cuda.is_available():  # the engines' own parity report (recorded, not enforced)
            stages.stage("validate TensorRT engines")
            trt_report = validator.check(trtb.TrtEncoder(out_dir / engines["engines"]["encoder"]["file"]),
                                         trtb.TrtHead(out_dir / engines["engines"]["head"]["file"]),
                                         f"tensorrt-{options.precision}", options.tolerance, with_eval=bool(eval_docs))
            engines["validation"] = trt_report.as_dict()

    stages.stage("write manifest")
    files = [f for name in (ENCODER_FILE, HEAD_FILE) for f in _graph_files(out_dir, name)]
    files += [CONFIG_FILE] + tokenizer_files
    if engines:
        files += [e["file"] for e in engines["engines"].values()]
    grid_checked = sorted({d["grid"] for d in report.sample_documents.values()})
    manifest = {
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
        "model": {"relations": cfg.relations, "relation_names": cfg.relation_names, "entity_types": cfg.entity_types,
                  "markers": cfg.markers, "threshold": cfg.threshold, "top_k": cfg.top_k, "loss": cfg.loss,
                  "grid_size": cfg.grid_size, "grid_step": cfg.grid_step, "max_window": cfg.max_window,
                  "window_overlap": cfg.window_overlap, "hidden_size": cfg.hidden_size, "num_heads": cfg.num_heads,
                  "encoder_name": cfg.encoder_name},
        "grid_sizes": {"mode": "dynamic", "description": "one head graph for every grid size; N = grid_size, or "
                       "grid_size + k * grid_step for documents with more entities",
                       "base": cfg.grid_size, "step": cfg.grid_step, "validated": grid_checked},
        "tokenizer_files": tokenizer_files,
        "versions": library_versions(),
        "validation": report.as_dict(),
        "tensorrt": {"compatibility": compat, "profiles": profiles, "settings": asdict(settings), "engines": engines},
    }
    stages.close()
    manifest["export_seconds"] = round(time.perf_counter() - t_start, 3)
    manifest["stage_seconds"] = dict(stages.times)
    manifest = write_manifest(out_dir, manifest, files)
    stages.close()
    sizes = {f: (out_dir / f).stat().st_size for f in sorted(set(files))}
    return ExportResult(out_dir, manifest, sizes, time.perf_counter() - t_start, dict(stages.times))


def _axes_json(axes: dict) -> dict:
    return {name: {str(k): v for k, v in dims.items()} for name, dims in axes.items()}


def _json(obj) -> str:
    import json

    return json.dumps(obj, indent=2, default=str) + "\n"
