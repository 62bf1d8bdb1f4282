"""Tiling: InternVL dynamic_preprocess semantics against an independent re-statement."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from PIL import Image

from sailvl.data.tiling import (
    STAGE_MAX_TILES,
    TilingConfig,
    candidate_grids,
    choose_grid,
    num_tiles,
    tile_image,
)


def reference_grid(w: int, h: int, tile: int, lo: int, hi: int) -> tuple[int, int]:
    """The rule restated: among grids at the minimal float64 distance, the first one in
    candidate order, unless a later minimal one satisfies the area condition, in which
    case the last such one."""
    grids = list(candidate_grids(lo, hi))
    dists = [abs(w / h - c / r) for c, r in grids]
    best = min(dists)
    minimal = [g for g, d in zip(grids, dists, strict=True) if d == best]
    later = [(c, r) for c, r in minimal[1:] if w * h > 0.5 * tile * tile * c * r]
    return later[-1] if later else minimal[0]


def test_candidate_grids_cover_exactly_the_products_in_range() -> None:
    grids = candidate_grids(1, 8)
    expected = {(i, j) for i in range(1, 9) for j in range(1, 9) if i * j <= 8}
    assert set(grids) == expected
    assert len(grids) == len(expected)
    products = [c * r for c, r in grids]
    assert products == sorted(products)
    assert {(1, 8), (8, 1), (2, 4), (4, 2)} <= set(grids)
    assert all(2 <= c * r <= 6 for c, r in candidate_grids(2, 6))


SIZES = sorted(
    set(
        itertools.product(
            [1, 7, 63, 64, 100, 224, 300, 447, 448, 449, 600, 896, 1000, 1344, 2000, 4000],
            [1, 10, 64, 150, 224, 333, 448, 640, 897, 1024, 1792, 3000],
        )
    )
)


@pytest.mark.parametrize(
    ("lo", "hi", "tile"), [(1, 8, 448), (1, 10, 448), (1, 12, 448), (2, 6, 64), (1, 1, 448)]
)
def test_choose_grid_matches_the_rule_over_a_table_of_sizes(lo: int, hi: int, tile: int) -> None:
    cfg = TilingConfig(tile_size=tile, min_tiles=lo, max_tiles=hi)
    for w, h in SIZES + [(h, w) for w, h in SIZES]:
        got = choose_grid(w, h, cfg)
        assert got == reference_grid(w, h, tile, lo, hi), (w, h)
        assert lo <= got[0] * got[1] <= hi


def test_known_grids() -> None:
    cfg = TilingConfig(max_tiles=8)
    assert choose_grid(448, 448, cfg) == (1, 1)  # 1:1 -> (1,1); area too small for 2x2
    assert choose_grid(896, 896, cfg) == (2, 2)  # same ratio, area > half of 2x2 -> bigger
    assert choose_grid(1000, 500, cfg) == (2, 1)
    assert choose_grid(500, 1000, cfg) == (1, 2)
    assert choose_grid(4000, 100, cfg) == (8, 1)  # max 8 allows 8x1
    assert choose_grid(1792, 896, TilingConfig(max_tiles=8)) == (4, 2)  # 2:1 large -> 4x2
    assert choose_grid(10_000, 1000, TilingConfig(max_tiles=10)) == (10, 1)


def test_tie_rule_prefers_later_grid_only_for_large_images() -> None:
    cfg = TilingConfig(max_tiles=8)
    # A square image is at distance 0 from both 1x1 and 2x2: the area decides.
    small = choose_grid(600, 600, cfg)  # 360000 < 0.5*448^2*4 = 401408
    large = choose_grid(640, 640, cfg)  # 409600 > 401408
    assert (small, large) == ((1, 1), (2, 2))


def exact_grid(w: int, h: int, tile: int, lo: int, hi: int) -> tuple[int, int]:
    """The same rule in exact rational arithmetic (what InternVL does NOT do)."""
    best, best_d = (1, 1), None
    for c, r in candidate_grids(lo, hi):
        d = abs(Fraction(w, h) - Fraction(c, r))
        if best_d is None or d < best_d:
            best, best_d = (c, r), d
        elif d == best_d and w * h > 0.5 * tile * tile * c * r:
            best = (c, r)
    return best


@pytest.mark.parametrize(
    ("w", "h", "grid", "exact"),
    [(7, 12, (2, 3), (1, 2)), (14, 24, (2, 3), (1, 2)), (11, 60, (1, 6), (1, 5))],
)
def test_float64_midpoints_follow_internvl_not_exact_fractions(
    w: int, h: int, grid: tuple[int, int], exact: tuple[int, int]
) -> None:
    # 7/12 is exactly midway between 1/2 and 2/3, but in float64 |7/12 - 2/3| is
    # smaller, so InternVL picks 2x3 where exact arithmetic (and the area rule) keeps 1x2.
    cfg = TilingConfig(max_tiles=8)
    assert choose_grid(w, h, cfg) == grid
    assert exact_grid(w, h, 448, 1, 8) == exact


@pytest.mark.parametrize(("w", "h"), [(100, 100), (900, 450), (1500, 400), (300, 1300)])
def test_tile_image_count_size_and_thumbnail(w: int, h: int) -> None:
    cfg = TilingConfig(tile_size=32, max_tiles=6)
    img = Image.new("RGB", (w, h), (10, 20, 30))
    tiles = tile_image(img, cfg)
    cols, rows = choose_grid(w, h, cfg)
    assert len(tiles) == num_tiles(w, h, cfg)
    assert len(tiles) == cols * rows + (1 if cols * rows > 1 else 0)
    assert all(t.size == (32, 32) and t.mode == "RGB" for t in tiles)
    no_thumb = tile_image(img, TilingConfig(tile_size=32, max_tiles=6, use_thumbnail=False))
    assert len(no_thumb) == cols * rows


def test_tiles_are_row_major_crops() -> None:
    # A 2x1 image: left half red, right half blue -> tile 0 red, tile 1 blue, thumb both.
    img = Image.new("RGB", (128, 64), (255, 0, 0))
    img.paste((0, 0, 255), (64, 0, 128, 64))
    tiles = tile_image(img, TilingConfig(tile_size=64, max_tiles=4))
    assert len(tiles) == 3
    assert tiles[0].getpixel((32, 32)) == (255, 0, 0)
    assert tiles[1].getpixel((32, 32)) == (0, 0, 255)
    assert tiles[2].getpixel((5, 32))[0] > 200 and tiles[2].getpixel((60, 32))[2] > 200
    # rows: a 1x2 image, top green, bottom white
    img = Image.new("RGB", (64, 128), (0, 255, 0))
    img.paste((255, 255, 255), (0, 64, 64, 128))
    tiles = tile_image(img, TilingConfig(tile_size=64, max_tiles=4, use_thumbnail=False))
    assert [t.getpixel((32, 32)) for t in tiles] == [(0, 255, 0), (255, 255, 255)]


def test_stage_limits_and_validation() -> None:
    assert TilingConfig.for_stage("pretrain-alignment").max_tiles == 8
    assert TilingConfig.for_stage("sft-preference").max_tiles == 10
    assert set(STAGE_MAX_TILES) == {
        "pretrain-alignment",
        "pretrain-advance",
        "sft-knowledge",
        "sft-instruction",
        "sft-preference",
    }
    with pytest.raises(ValueError, match="max_tiles"):
        TilingConfig(min_tiles=3, max_tiles=2)
    with pytest.raises(ValueError, match="tile_size"):
        TilingConfig(tile_size=0)
    with pytest.raises(ValueError, match="stage"):
        TilingConfig.for_stage("nope")
    with pytest.raises(ValueError, match="positive"):
        choose_grid(0, 10, TilingConfig())
