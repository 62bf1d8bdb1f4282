"""Dynamic-resolution tiling with InternVL's `dynamic_preprocess` semantics.

An image becomes a grid of `cols x rows` square tiles of `tile_size` pixels, chosen
among all grids with `min_tiles <= cols * rows <= max_tiles` (so max 8 allows 1x8, 2x4,
4x2, 8x1 and every smaller grid):

1. Candidates are ordered by tile count (ascending). Within equal counts the order is
   the iteration order of InternVL's Python `set` of (i, j) tuples, which is fixed in
   CPython (small-int tuple hashes are not randomised); it matters only for ties below.
2. The grid whose aspect ratio cols/rows is closest to width/height wins, computed in
   float64 exactly as InternVL does (exact fractions pick another grid in some midpoint
   cases, which would change the tokens a checkpoint was trained on).
3. Tie rule: a later candidate with the same distance replaces the current best only if
   the image area exceeds half the candidate's pixel area
   (`w * h > 0.5 * tile^2 * cols * rows`): big images take the bigger grid.
4. The image is resized to (tile * cols, tile * rows) and cut row-major; if the grid has
   more than one tile and `use_thumbnail`, the whole image resized to one tile is
   appended last.

`max_tiles` does not count the thumbnail (InternVL's `max_dynamic_patch` does not
either). Stage limits (paper Table 3): pretraining grids up to 2x4 (8 tiles, 2048
tokens at 256 per tile), SFT up to 2x5 (10 tiles, 2560 tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# Largest tile count per stage (thumbnail not counted).
STAGE_MAX_TILES: Mapping[str, int] = {
    "pretrain-alignment": 8,
    "pretrain-advance": 8,
    "sft-knowledge": 10,
    "sft-instruction": 10,
    "sft-preference": 10,
}


@dataclass(frozen=True, kw_only=True)
class TilingConfig:
    """How images are cut into tiles."""

    tile_size: int = 448  # tile edge in pixels (the model preset's tile_size)
    min_tiles: int = 1  # smallest grid (cols * rows) considered
    max_tiles: int = 12  # largest grid considered; the thumbnail is extra
    use_thumbnail: bool = True  # append a whole-image tile when the grid has > 1 tile

    def __post_init__(self) -> None:
        if self.tile_size <= 0:
            raise ValueError(f"tile_size: must be positive, got {self.tile_size}")
        if self.min_tiles < 1:
            raise ValueError(f"min_tiles: must be >= 1, got {self.min_tiles}")
        if self.max_tiles < self.min_tiles:
            raise ValueError(f"max_tiles: {self.max_tiles} is below min_tiles {self.min_tiles}")

    @classmethod
    def for_stage(
        cls, stage: str, *, tile_size: int = 448, use_thumbnail: bool = True
    ) -> TilingConfig:
        """The paper's tile limits for a stage name (see STAGE_MAX_TILES)."""
        if stage not in STAGE_MAX_TILES:
            raise ValueError(f"stage: unknown {stage!r}; known: {sorted(STAGE_MAX_TILES)}")
        return cls(
            tile_size=tile_size, max_tiles=STAGE_MAX_TILES[stage], use_thumbnail=use_thumbnail
        )


@lru_cache(maxsize=64)
def candidate_grids(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """All (cols, rows) with min <= cols*rows <= max, in InternVL's candidate order."""
    grids = {
        (i, j)
        for n in range(min_tiles, max_tiles + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_tiles <= i * j <= max_tiles
    }
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


def choose_grid(width: int, height: int, config: TilingConfig) -> tuple[int, int]:
    """The (cols, rows) grid for an image of `width` x `height` pixels."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    aspect = width / height  # float64, as InternVL
    area = width * height
    size = config.tile_size
    best_diff = float("inf")
    best = (1, 1)
    for cols, rows in candidate_grids(config.min_tiles, config.max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best_diff, best = diff, (cols, rows)
        elif diff == best_diff and area > 0.5 * size * size * cols * rows:
            best = (cols, rows)
    return best


def num_tiles(width: int, height: int, config: TilingConfig) -> int:
    """Tiles an image yields (thumbnail included), without touching pixels."""
    cols, rows = choose_grid(width, height, config)
    n = cols * rows
    return n + 1 if config.use_thumbnail and n > 1 else n


def tile_image(image: Image.Image, config: TilingConfig) -> list[Image.Image]:
    """Cut an image into tiles (RGB), row-major, thumbnail last when added.

    Resizing uses PIL's default filter for RGB (bicubic), as InternVL's
    `image.resize((w, h))` does.
    """
    from PIL import Image as PILImage

    image = image.convert("RGB")
    cols, rows = choose_grid(image.width, image.height, config)
    size = config.tile_size
    resized = image.resize((size * cols, size * rows), PILImage.Resampling.BICUBIC)
    tiles = [
        resized.crop((c * size, r * size, (c + 1) * size, (r + 1) * size))
        for r in range(rows)
        for c in range(cols)
    ]
    if config.use_thumbnail and len(tiles) > 1:
        tiles.append(image.resize((size, size), PILImage.Resampling.BICUBIC))
    return tiles
