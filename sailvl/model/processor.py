"""Image processor: PIL images -> tiles -> normalised pixel tensor, as InternVL does.

Each image is converted to RGB, tiled by `sailvl.data.tiling` (dynamic resolution,
optional thumbnail), and every tile is scaled to [0, 1] and normalised with the
ImageNet mean / std (InternVL's `build_transform`: ToTensor + Normalize; its Resize is
a no-op on tiles that already have the tile size). The tensor is
(total tiles, 3, tile_size, tile_size) float32, tiles of image 0 first: the order in
which the model fills the `<IMG_CONTEXT>` runs of the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sailvl.data.tiling import TilingConfig, tile_image
from sailvl.model.presets import get_preset

if TYPE_CHECKING:
    import torch
    from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class ProcessorConfig:
    """How images become pixel_values."""

    tiling: TilingConfig = field(default_factory=TilingConfig)  # grid rule and tile size
    mean: tuple[float, float, float] = IMAGENET_MEAN  # per-channel mean on [0, 1] pixels
    std: tuple[float, float, float] = IMAGENET_STD  # per-channel std; all must be > 0

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean/std: need three channels")
        if min(self.std) <= 0:
            raise ValueError(f"std: must be positive, got {self.std}")

    @classmethod
    def for_preset(
        cls, preset: str, *, min_tiles: int = 1, max_tiles: int = 12, use_thumbnail: bool = True
    ) -> ProcessorConfig:
        """Tiles of the preset's tile size with the given grid limits."""
        tiling = TilingConfig(
            tile_size=get_preset(preset).tile_size,
            min_tiles=min_tiles,
            max_tiles=max_tiles,
            use_thumbnail=use_thumbnail,
        )
        return cls(tiling=tiling)

    @classmethod
    def for_model(
        cls, model: Any, *, min_tiles: int = 1, max_tiles: int = 12, use_thumbnail: bool = True
    ) -> ProcessorConfig:
        """Tiles of a built / loaded model's own tile size (read from its config)."""
        tiling = TilingConfig(
            tile_size=int(model.config.vision_config.image_size[0]),
            min_tiles=min_tiles,
            max_tiles=max_tiles,
            use_thumbnail=use_thumbnail,
        )
        return cls(tiling=tiling)


class ImageProcessor:
    """Turns the images of a sample into (pixel_values, tiles per image)."""

    def __init__(self, config: ProcessorConfig) -> None:
        self.config = config

    @property
    def tile_size(self) -> int:
        return self.config.tiling.tile_size

    def tiles(self, image: Image.Image) -> list[Image.Image]:
        """The tiles of one image (PIL, RGB)."""
        return tile_image(image, self.config.tiling)

    def normalize(self, tiles: Sequence[Image.Image]) -> torch.Tensor:
        """(len(tiles), 3, S, S) float32 tensor, ImageNet-normalised."""
        import numpy as np
        import torch

        size = self.tile_size
        if not tiles:
            return torch.empty(0, 3, size, size)
        arr = np.stack([np.asarray(t.convert("RGB"), dtype=np.float32) for t in tiles])
        if arr.shape[1:] != (size, size, 3):
            raise ValueError(f"tiles: expected {size}x{size} RGB, got shape {arr.shape[1:]}")
        mean = np.asarray(self.config.mean, dtype=np.float32)
        std = np.asarray(self.config.std, dtype=np.float32)
        arr = (arr / 255.0 - mean) / std
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))

    def __call__(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, list[int]]:
        """pixel_values of all tiles of `images` (in order) and the tile count of each."""
        all_tiles: list[Image.Image] = []
        counts: list[int] = []
        for image in images:
            tiles = self.tiles(image)
            all_tiles.extend(tiles)
            counts.append(len(tiles))
        return self.normalize(all_tiles), counts
