"""Held-out synthetic benchmarks: the same three tasks as :mod:`sailvl.eval.synthetic`,
drawn so that nothing but the question and the answer set matches the demo's SFT data.

What differs from the in-distribution generators, and why each matters:

- vocabulary: ``WORDS`` here share no word with the in-distribution list, so reading
  cannot be memorised word by word;
- font: PIL's bitmap font (``load_default_imagefont``, 6x11 px glyphs) drawn small and
  scaled up with nearest-neighbour, where the benchmarks and the SFT rows use the
  scalable default font and the pretraining renders use scalable system fonts;
- layout: a wider canvas, text or shapes anywhere at random sizes, tinted speckled
  backgrounds, other shades of the colours, outlines, three shapes scattered instead of
  two in a row.

The rows come from the same builders as the in-distribution ones
(:mod:`sailvl.eval.synthetic_rows`, given this module's ``STYLE``), so they keep the
VLMEvalKit TSV columns and every third row refers to the previous row's image, and the
same scorers grade them. ``SHAPES`` and the colour names equal those of
:mod:`sailvl.eval.synthetic` (a test checks it): a model can only answer with names it
was taught.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

from . import synthetic_rows
from .synthetic_rows import Style, draw_shape, png

WORDS = [
    "garden",
    "silver",
    "window",
    "rocket",
    "forest",
    "bridge",
    "castle",
    "pepper",
    "meadow",
    "summit",
    "falcon",
    "copper",
]
SHAPES = synthetic_rows.SHAPES
# Other shades of the same four colour names.
COLORS = {
    "red": (178, 24, 60),
    "green": (20, 120, 90),
    "blue": (70, 120, 250),
    "black": (40, 40, 48),
}


def _background(rng: random.Random, width: int, height: int) -> Any:
    """A pale tint with speckles: neither plain white nor the in-distribution grey."""
    from PIL import Image, ImageDraw

    tint = tuple(rng.randint(200, 245) for _ in range(3))
    img = Image.new("RGB", (width, height), tint)
    draw = ImageDraw.Draw(img)
    for _ in range(width * height // 60):
        x, y = rng.randrange(width), rng.randrange(height)
        shade = tuple(max(0, c - rng.randint(20, 60)) for c in tint)
        draw.point((x, y), fill=shade)
    return img


def _text_image(word: str, rng: random.Random, size: int) -> str:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default_imagefont()  # the bitmap font, 11 px high
    left, top, right, bottom = font.getbbox(word)
    scale = max(2, size // 24)
    glyphs = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(glyphs).text((1 - left, 1 - top), word, fill=255, font=font)
    glyphs = glyphs.resize((glyphs.width * scale, glyphs.height * scale), Image.Resampling.NEAREST)
    width = max(size * 3, glyphs.width + 8)
    img = _background(rng, width, size)
    ink = tuple(rng.randint(0, 90) for _ in range(3))
    x = rng.randint(2, max(2, width - glyphs.width - 2))
    y = rng.randint(2, max(2, size - glyphs.height - 2))
    img.paste(Image.new("RGB", glyphs.size, ink), (x, y), glyphs)
    return png(img)


def _scattered(shapes: list[tuple[str, str]], rng: random.Random, size: int) -> str:
    """Shapes at random places and sizes, each in its own cell of a 2x2 grid (no overlap)."""
    from PIL import ImageDraw

    img = _background(rng, size, size)
    draw = ImageDraw.Draw(img)
    cells = rng.sample([(0, 0), (1, 0), (0, 1), (1, 1)], len(shapes))
    half = size // 2
    for (shape, color), (cx, cy) in zip(shapes, cells, strict=True):
        side = rng.randint(half * 3 // 5, half - 4)
        x0 = cx * half + rng.randint(2, half - side - 2)
        y0 = cy * half + rng.randint(2, half - side - 2)
        box = (x0, y0, x0 + side, y0 + side)
        draw_shape(draw, shape, box, COLORS[color], outline=(255, 255, 255))
    return png(img)


STYLE = Style(
    words=WORDS,
    colors=list(COLORS),
    text=_text_image,
    shapes=_scattered,
    mcq_hint=False,
    yesno_shapes=3,
    yesno_sample_first=False,
    yesno_ask_random=True,
)
ocr_rows = partial(synthetic_rows.ocr_rows, STYLE)
mcq_rows = partial(synthetic_rows.mcq_rows, STYLE)
yesno_rows = partial(synthetic_rows.yesno_rows, STYLE)
