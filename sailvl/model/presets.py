"""Model presets: the SAIL-VL architectures by name, as plain data (no torch).

A preset fixes the vision tower (InternViT), the language model (Qwen2) and the visual
token arithmetic that links them. The arithmetic is the one InternVL uses:

    patches per tile side  = tile_size / patch_size            (448 / 14 = 32)
    tokens per tile        = (patches per side * downsample)^2  (32 * 0.5 = 16 -> 256)

The vision tower emits one feature per patch; a 2x2 pixel shuffle (downsample 0.5)
folds four neighbouring patches into one token of 4x the width, which the projector
(LayerNorm, Linear, GELU, Linear) maps to the LLM width. So a 448 px tile becomes 256
`<IMG_CONTEXT>` tokens. The `tiny` preset keeps the arithmetic but shrinks it: 64 px
tiles, 8 px patches -> 8x8 patches -> 16 tokens per tile, so CPU tests stay fast.

This module is pure on purpose: the data pipeline, the packer and the operator read
`tokens_per_tile` and `tile_size` from here without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class VisionPreset:
    """InternViT vision tower shape (transformers `InternVLVisionConfig` fields)."""

    hidden_size: int  # width of the ViT residual stream
    num_hidden_layers: int  # transformer blocks
    num_attention_heads: int  # heads per block; must divide hidden_size
    intermediate_size: int  # MLP width
    attention_bias: bool = True  # InternViT-300M has qkv bias


@dataclass(frozen=True, kw_only=True)
class TextPreset:
    """Qwen2 language model shape (transformers `Qwen2Config` fields)."""

    hidden_size: int  # width of the residual stream
    intermediate_size: int  # SwiGLU MLP width
    num_hidden_layers: int  # decoder blocks
    num_attention_heads: int  # query heads; must divide hidden_size
    num_key_value_heads: int  # GQA key/value heads; must divide num_attention_heads
    vocab_size: int  # embedding rows (Qwen2.5 pads past the tokenizer's length)
    tie_word_embeddings: bool  # Qwen2.5-1.5B ties lm_head to the embeddings; 7B does not
    max_position_embeddings: int = 32768  # RoPE table length
    rope_theta: float = 1_000_000.0  # RoPE base (Qwen2.5)
    rms_norm_eps: float = 1e-6  # RMSNorm epsilon


@dataclass(frozen=True, kw_only=True)
class ModelPreset:
    """One SAIL-VL architecture: vision tower, LLM and the visual token arithmetic."""

    name: str  # registry key
    vision: VisionPreset  # the InternViT tower
    text: TextPreset  # the Qwen2 LLM
    tile_size: int = 448  # tile edge in pixels (InternVL force_image_size)
    patch_size: int = 14  # ViT patch edge in pixels
    downsample_ratio: float = 0.5  # pixel shuffle factor: 0.5 folds 2x2 patches into one token
    builds_tokenizer: bool = False  # True: a local byte-level tokenizer (tiny); else load one
    reference_params: dict[str, float] = dataclasses.field(default_factory=dict)
    """Paper Table 3 trainable parameter counts per stage policy, for the checks."""

    def __post_init__(self) -> None:
        if self.tile_size % self.patch_size:
            raise ValueError(f"tile_size {self.tile_size} is not a multiple of patch_size")
        side = self.tile_size // self.patch_size
        inv = round(1 / self.downsample_ratio)
        if abs(1 / inv - self.downsample_ratio) > 1e-9 or side % inv:
            raise ValueError(
                f"downsample_ratio {self.downsample_ratio} must be 1/k with k dividing "
                f"the {side} patches per tile side"
            )
        if self.vision.hidden_size % self.vision.num_attention_heads:
            raise ValueError("vision.num_attention_heads must divide vision.hidden_size")
        if self.text.hidden_size % self.text.num_attention_heads:
            raise ValueError("text.num_attention_heads must divide text.hidden_size")
        if self.text.num_attention_heads % self.text.num_key_value_heads:
            raise ValueError("text.num_key_value_heads must divide text.num_attention_heads")

    @property
    def patches_per_side(self) -> int:
        """ViT patches along one edge of a tile."""
        return self.tile_size // self.patch_size

    @property
    def tokens_per_tile(self) -> int:
        """`<IMG_CONTEXT>` tokens one tile becomes after the pixel shuffle."""
        return round((self.patches_per_side * self.downsample_ratio) ** 2)


_INTERNVIT_300M = VisionPreset(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
)

PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        name="tiny",
        vision=VisionPreset(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
        ),
        text=TextPreset(
            hidden_size=128,
            intermediate_size=384,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=320,  # 256 bytes + specials, padded to a multiple of 64
            tie_word_embeddings=True,
            max_position_embeddings=8192,
        ),
        tile_size=64,
        patch_size=8,
        builds_tokenizer=True,
    ),
    "2b": ModelPreset(
        name="2b",
        vision=_INTERNVIT_300M,
        text=TextPreset(  # Qwen2.5-1.5B
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        reference_params={"projector": 8.65e6, "vision+projector": 313e6, "all": 1.85e9},
    ),
    "8b": ModelPreset(
        name="8b",
        vision=_INTERNVIT_300M,
        text=TextPreset(  # Qwen2.5-7B
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
        reference_params={"projector": 27.52e6, "vision+projector": 332e6, "all": 7.95e9},
    ),
}


def get_preset(name: str) -> ModelPreset:
    """The preset called `name`; ValueError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}") from None
