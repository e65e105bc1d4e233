"""DocuNetConfig: every hyper-parameter a trained model needs to be rebuilt and served.

It is saved as `config.json` in a checkpoint and copied into exported model directories, so the
trainer, the exporter and the runtime read the same values (markers, windows, grid, decoding).
The file names its family (`"model_type": "docunet"`); files written before that key existed
load the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config_file import ConfigFile

# DocRED's entity types in the order the original typed markers use: type k -> [unused{2k+1}] / [unused{2k+51}].
DOCRED_ENTITY_TYPES = ["ORG", "LOC", "TIME", "PER", "MISC", "NUM"]


@dataclass
class DocuNetConfig(ConfigFile):
    model_type: ClassVar[str] = "docunet"
    serving_settings: ClassVar[tuple[str, ...]] = ("grid_fit",)  # what Runtime(settings=...) may change at serve time
    # data / vocabulary
    relations: list[str] = field(default_factory=lambda: ["Na"])  # index 0 = no relation
    relation_names: dict[str, str] = field(default_factory=dict)  # label -> readable name
    entity_types: list[str] = field(default_factory=lambda: list(DOCRED_ENTITY_TYPES))
    markers: str = "typed"  # "typed" ([unusedN] per entity type, BERT vocabularies) or "asterisk" ("*")
    # encoder
    encoder_name: str = ""  # what it was initialised from (path or hub name)
    encoder_config: dict[str, Any] = field(default_factory=dict)  # the transformers config, to rebuild offline
    max_window: int = 512  # tokens per encoder window, special tokens included
    window_overlap: int = 128  # minimum overlap between windows of a long document
    # feature map, U-Net, classifier
    feature_map: str = "context"  # "context" (entity-aware attention) or "similarity"
    use_unet: bool = True  # False: the paper's "w/o U-shaped segmentation" ablation
    unet_in_channels: int = 3
    unet_down_channels: int = 256  # U-Net widths: in -> d -> 2d -> 2d -> d -> d/2 -> out
    unet_out_channels: int = 256
    grid_size: int = 42  # entity grid N
    grid_step: int = 14  # documents with more entities use N = grid_size + k * grid_step
    # 0: every document is padded to grid_size (how the model was trained; exact). k > 0: a document
    # with n <= grid_size entities gets the smallest multiple of k that holds them: the U-Net's cost
    # falls with N^2, at a small measured change in F1 (an inference-time speed option)
    grid_fit: int = 0
    emb_size: int = 768
    block_size: int = 64
    # loss and decoding
    loss: str = "balanced"  # "balanced" (threshold 0) or "adaptive" (ATLOP's threshold class)
    threshold: float = 0.0
    top_k: int = 3  # at most k labels per pair (0: no limit); class 0 takes part in the ranking
    # Platt scaling (a, b) of the decision margin into a probability-like score, fitted on the dev set at
    # the end of training (losses.probability); None: score = sigmoid(margin)
    score_calibration: list[float] | None = None

    def __post_init__(self) -> None:
        if self.markers not in ("typed", "asterisk"):
            raise ValueError(f"markers must be 'typed' or 'asterisk', got {self.markers!r}")
        if self.feature_map not in ("context", "similarity"):
            raise ValueError(f"feature_map must be 'context' or 'similarity', got {self.feature_map!r}")
        if self.loss not in ("balanced", "adaptive"):
            raise ValueError(f"loss must be 'balanced' or 'adaptive', got {self.loss!r}")
        if self.emb_size % self.block_size:
            raise ValueError(f"emb_size {self.emb_size} must be a multiple of block_size {self.block_size}")
        if self.grid_fit < 0 or self.grid_size < 4:
            raise ValueError("grid_fit must be >= 0 (0: fixed grid) and grid_size >= 4")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0: no limit), got {self.top_k}")
        if self.score_calibration is not None and len(self.score_calibration) != 2:
            raise ValueError(f"score_calibration must be [a, b], got {self.score_calibration!r}")
        if self.max_window < 8 or not 0 <= self.window_overlap < self.max_window - 4:
            raise ValueError("max_window must be >= 8 and window_overlap in [0, max_window - 4)")

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder_config["hidden_size"])

    @property
    def num_heads(self) -> int:
        return int(self.encoder_config["num_attention_heads"])

    @property
    def max_sequence_length(self) -> int:
        """The longest encoder window: max_window, capped by the encoder's position embeddings."""
        return min(self.max_window, int(self.encoder_config.get("max_position_embeddings", self.max_window)))

    def grid_for(self, num_entities: int) -> int:
        """The grid size N a document with this many entities is padded to."""
        if num_entities <= self.grid_size:
            if self.grid_fit:
                return min(self.grid_size, max(4, -(-num_entities // self.grid_fit) * self.grid_fit))
            return self.grid_size
        steps = -(-(num_entities - self.grid_size) // self.grid_step)
        return self.grid_size + steps * self.grid_step
