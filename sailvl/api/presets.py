"""The paper's Table 3 as data: five stages, each for the 2B and the 8B model.

A TrainStage that names a preset gets these values for every field it leaves unset.
Tiles: "1x1..2x4" means at most 8 tiles per image (InternVL's ``max_num``), so 2048
visual tokens at 256 tokens per tile; "1x1..2x5" is 10 tiles, 2560 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

StageName = Literal[
    "pretrain-alignment", "pretrain-advance", "sft-knowledge", "sft-instruction", "sft-preference"
]
ModelSize = Literal["tiny", "2b", "8b"]
Module = Literal["vision", "projector", "llm"]

STAGE_NAMES: Final[tuple[str, ...]] = (
    "pretrain-alignment",
    "pretrain-advance",
    "sft-knowledge",
    "sft-instruction",
    "sft-preference",
)
MODULES: Final[tuple[str, ...]] = ("vision", "projector", "llm")


@dataclass(frozen=True, kw_only=True)
class StagePreset:
    """One row of Table 3 for one model size."""

    trainable: tuple[str, ...]
    max_tiles: int
    global_batch: int
    lr: float

    def max_visual_tokens(self, tokens_per_tile: int) -> int:
        return self.max_tiles * tokens_per_tile


@dataclass(frozen=True, kw_only=True)
class ModelLimits:
    """What a model preset allows: tokens per tile and the largest tile count."""

    tokens_per_tile: int
    max_tiles: int
    tile_size: int


# The tiny preset is for CPU tests and the demo: small tiles, few tokens per tile.
MODEL_LIMITS: Final[dict[str, ModelLimits]] = {
    "tiny": ModelLimits(tokens_per_tile=16, max_tiles=12, tile_size=64),
    "2b": ModelLimits(tokens_per_tile=256, max_tiles=12, tile_size=448),
    "8b": ModelLimits(tokens_per_tile=256, max_tiles=12, tile_size=448),
}

_ALL: Final = ("vision", "projector", "llm")

TABLE3: Final[dict[str, dict[str, StagePreset]]] = {
    "2b": {
        "pretrain-alignment": StagePreset(
            trainable=("projector",), max_tiles=8, global_batch=1920, lr=1e-4
        ),
        "pretrain-advance": StagePreset(
            trainable=("vision", "projector"), max_tiles=8, global_batch=2048, lr=4e-5
        ),
        "sft-knowledge": StagePreset(trainable=_ALL, max_tiles=10, global_batch=512, lr=1e-5),
        "sft-instruction": StagePreset(trainable=_ALL, max_tiles=10, global_batch=512, lr=1e-5),
        "sft-preference": StagePreset(trainable=_ALL, max_tiles=10, global_batch=512, lr=1e-5),
    },
    "8b": {
        "pretrain-alignment": StagePreset(
            trainable=("projector",), max_tiles=8, global_batch=512, lr=1e-3
        ),
        "pretrain-advance": StagePreset(
            trainable=("vision", "projector"), max_tiles=8, global_batch=2048, lr=4e-5
        ),
        "sft-knowledge": StagePreset(trainable=_ALL, max_tiles=10, global_batch=512, lr=1e-5),
        "sft-instruction": StagePreset(trainable=_ALL, max_tiles=10, global_batch=512, lr=1e-5),
        "sft-preference": StagePreset(trainable=_ALL, max_tiles=10, global_batch=512, lr=1e-5),
    },
}


def stage_preset(stage: str, size: str) -> StagePreset:
    """The Table 3 row for ``stage`` and model ``size``; the tiny model uses the 2B rows."""
    table = TABLE3["2b" if size == "tiny" else size]
    return table[stage]
