"""The contract every model family implements, and the export spec it hands to the generic exporter.

Everything above the model families (export, validation, engines, runtime, training, evaluation,
checkpoints) calls a family only through `ModelFamily` and reads its graphs only through
`ExportSpec`, so a new family (PL-Marker's span NER or relation model) is a new package under
`docunet/models/` and one line in the registry, with no branch anywhere else.

The data path of every family is the same:

    documents --featurize--> features --collate--> batch --run(graphs)--> raw --decode--> predictions

`run` takes the graphs as callables by name (the PyTorch modules, ONNX Runtime sessions or
TensorRT engines: all take and return torch tensors), so training, validation and serving share
one forward pass and an exported model cannot drift from the trained one.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

from ..timing import NULL_TIMER

if TYPE_CHECKING:  # torch stays unimported until a model is built (importing docunet is light)
    import torch
    from torch import nn

Graphs = Mapping[str, Callable[..., Any]]  # graph name -> callable on torch tensors


@dataclass
class ParityOutputs:
    """What a family compares between the PyTorch model and an exported one, for one document."""

    scores: torch.Tensor  # float32, any shape: the raw scores that must agree (logits of the real block)
    decisions: torch.Tensor  # bool [P, C]: decoded decisions per scored unit (pair, span) and class
    facts: list[tuple]  # the decoded predictions as hashable tuples, e.g. (head, tail, label)
    predictions: list  # the decoded predictions themselves (for the family's score)


@dataclass(frozen=True)
class Fp16Policy:
    """Which nodes of an exported graph may run in fp16, by the module they were exported from.

    `inside`: nodes of these module classes (and their submodules). `below`: nodes of submodules
    of these classes, not of the class itself. `feeding`: (op, classes): nodes of those classes
    that feed an `op` node, up to and including it. `fallback_ops`: an op-type policy for graphs
    without module metadata (None: every op the converter can run in fp16)."""

    inside: tuple[str, ...] = ()
    below: tuple[str, ...] = ()
    feeding: tuple[str, tuple[str, ...]] | None = None
    fallback_ops: frozenset[str] | None = None


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph: its file, I/O names, dynamic axes, example inputs and precision policy.

    `axes`: input name -> {axis: dimension name}; `dims(config)`: dimension name -> (min, max)
    for the exporter; `example(config)`: example inputs in `inputs` order; `module(model)`: the
    nn.Module to trace (tensor-only signature); `transformer(model)`: the transformer inside it,
    traced with eager attention and fused for ONNX Runtime when asked (None: not a transformer).
    `ort_fusion`: what that fusion covers: "encoder" (attention, bias + GELU, residual + LayerNorm: a stock
    encoder) or "feed-forward" (all but attention: a graph that runs the layers' attention its own way, such
    as PL-Marker's marker passes).
    `int8`: "dynamic" (per-channel weights, activations at run time), "static" (QDQ, calibrated
    on the graph's inputs from real documents; only with ExportOptions.int8_head) or None."""

    name: str
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    axes: Mapping[str, Mapping[int, str]]
    dims: Callable[[Any], Mapping[str, tuple[int, int]]]
    example: Callable[[Any], tuple[torch.Tensor, ...]]
    module: Callable[[nn.Module], nn.Module]
    transformer: Callable[[nn.Module], nn.Module] | None = None
    ort_fusion: str = "encoder"
    fp16: Fp16Policy = Fp16Policy()
    int8: str | None = None


@dataclass(frozen=True)
class ExportSpec:
    """A family's exported form, read by the generic exporter, validator, TensorRT builder and manifest.

    `trt_profiles(config, settings)`: graph name -> optimization profiles. `parity_documents(featurizer)`:
    documents every export is checked on (shapes the family must handle: long, crowded...).
    `describe_documents(featurizer, docs, features)`: title -> facts about each parity document.
    `manifest_model(config)`: the decoding settings recorded in (and checked against) the manifest.
    `manifest_extras(config, report)`: further family-specific manifest entries."""

    graphs: tuple[GraphSpec, ...]
    trt_profiles: Callable[[Any, Any], dict[str, list[dict]]]
    parity_documents: Callable[[Any], list]
    describe_documents: Callable[[Any, list, list], dict]
    manifest_model: Callable[[Any], dict]
    manifest_extras: Callable[[Any, Any], dict] = lambda config, report: {}
    kept_fp32: str = ""  # what the fp16 variant keeps in fp32, in words (for the manifest)

    def graph(self, name: str) -> GraphSpec:
        for g in self.graphs:
            if g.name == name:
                return g
        raise KeyError(f"no graph {name!r} in this spec ({', '.join(g.name for g in self.graphs)})")


class ModelFamily(ABC):
    """One model family: its config class, featurizer, model, forward pass over named graphs,
    decoding, loss, optimizer groups, scoring and export spec."""

    model_type: ClassVar[str]
    config_class: ClassVar[type]
    score_names: ClassVar[tuple[str, str]] = ("F1", "Ign F1")  # what `score`'s f1 and ign_f1 are, for reports
    output: ClassVar[str] = "relations"  # what `decode` gives per document: "relations" or "mentions" (Prediction's field)
    min_entities: ClassVar[int] = 0  # entities an input document must have (DocuNet: 2, for one pair)
    max_entities: ClassVar[int | None] = None  # entities a document may have (None: no limit), a memory bound
    # relations hold between mentions of one sentence, and every mention is an entity of its own (PL-Marker's relation
    # model): an entity model's mentions feed it directly, with no coreference step (pipelines, docunet-eval --ner)
    sentence_level: ClassVar[bool] = False

    # -- building -----------------------------------------------------------------------------
    def size_problem(self, doc: Any) -> str | None:
        """Why a document is too large for this family (None when it is not): `max_entities` bounds memory."""
        n = doc.num_entities
        if self.max_entities is not None and n > self.max_entities:
            return (f"has {n} entities, more than the {self.max_entities} a {self.model_type} model scores per document "
                    "(its entity pairs grow as the square): split the text into smaller documents")
        return None

    def input_warning(self, config: Any, doc: Any) -> str | None:
        """Why this model's result on `doc` is likely poor although nothing failed (None: no reason known); it goes
        into the output line's `warning`. Entity models that read capitalisation warn on text without it."""
        return None

    @abstractmethod
    def build_model(self, config: Any, transformer: nn.Module) -> nn.Module:
        """The trainable model around a (pretrained or freshly configured) transformer."""

    @abstractmethod
    def make_featurizer(self, tokenizer: Any, config: Any) -> Any:
        """The featurizer shared by training and serving: `featurizer(docs) -> features`, each with `.length`."""

    # -- the data path ------------------------------------------------------------------------
    def featurize(self, featurizer: Any, docs: Sequence[Any]) -> list:
        return featurizer(list(docs))

    def training_units(self, features: Sequence[Any]) -> list:
        """What the training loop batches and shuffles (default: one document's features each)."""
        return list(features)

    @abstractmethod
    def collate(self, featurizer: Any, features: Sequence[Any]) -> Any:
        """Padded tensors of one batch (an object with `.to(device)`)."""

    @abstractmethod
    def run(self, batch: Any, graphs: Graphs, config: Any, timer=NULL_TIMER) -> Any:
        """The forward pass over the named graphs (whatever executes them)."""

    @abstractmethod
    def decode(self, batch: Any, raw: Any, config: Any, threshold: float | None = None,
               top_k: int | None = None) -> list[list]:
        """Raw outputs of one batch -> one list of predictions per document, in batch order."""

    @abstractmethod
    def parity_outputs(self, batch: Any, raw: Any, features: Sequence[Any], config: Any) -> list[ParityOutputs]:
        """What export validation compares, per document of the batch."""

    # -- training and evaluation --------------------------------------------------------------
    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """Mean loss over the batch's scored units, and their number."""

    @abstractmethod
    def param_groups(self, model: nn.Module, args: Any) -> list[dict]:
        """Optimizer parameter groups with their learning rates (from the training arguments)."""

    @abstractmethod
    def score(self, config: Any, docs: Sequence[Any], predictions: Sequence[list], train_facts: set | None = None) -> Any:
        """The family's metric over labelled documents (a `metrics.Scores`: f1 and a second number, named by
        `score_names`), for a model with this config."""

    def report(self, config: Any, docs: Sequence[Any], predictions: Sequence[list], entity_docs: Sequence[Any] | None = None) -> dict | None:
        """Every number the original reports, by name (PL-Marker's relation model: Ent, Rel and Rel+ P/R/F1), or None
        when `score` is all the family has. `entity_docs`: the documents the model was given, when their entities
        were predicted (by an entity model) rather than the gold ones of `docs`."""
        return None

    # -- graphs --------------------------------------------------------------------------------
    @abstractmethod
    def graphs(self, model: nn.Module) -> dict[str, Callable]:
        """The PyTorch modules behind the export spec's graph names."""

    @abstractmethod
    def export_spec(self) -> ExportSpec:
        """The family's graphs and precision policies, for export, validation and engines."""

    def calibrate(self, model: nn.Module, featurizer: Any, docs: Sequence[Any]) -> dict:
        """Config updates that make the model's scores probability-like, fitted on labelled documents
        (DocuNet: Platt scaling of the decision margin); {} when the family has none."""
        return {}

    def eager_reference(self, model: nn.Module) -> None:
        """Switch the model to the original code's (slow) way of computing, for benchmark references."""
        raise NotImplementedError(f"{self.model_type} has no eager reference mode")

