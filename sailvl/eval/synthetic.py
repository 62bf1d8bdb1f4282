"""Small synthetic benchmarks in VLMEvalKit's TSV format, so tests and the demo need no
download.

- ``synth-ocr``: a word rendered on a plain background; "What is the word in the image?"
  (short answer, scored with ANLS). Every third row asks "How many letters ..." about the
  *previous* row's image, whose ``image`` cell is that row's index (VLMEvalKit's
  image-reference convention: a cell of <= 64 characters names another row).
- ``synth-mcq``: a coloured shape; "Which shape is shown?" with four options (answer
  letter); reference rows ask for the colour of the previous row's shape.
- ``synth-yesno``: "Is there a <shape> in the image?" with Yes/No answers, half of each;
  reference rows ask about a second shape on the same image; categories name the
  POPE-style sampling ("random", "popular").

Held-out twins (``HELDOUT``), built differently so that a model trained on rows drawn
by the generators above (the demo's SFT data, ``sailvl.local.assets``) is also measured
off its training distribution. Same questions and answer sets (a model can only name
shapes and colours it was taught), everything else changed:

- ``heldout-ocr``: words from a disjoint vocabulary (``HELDOUT_WORDS``), drawn in PIL's
  old bitmap font scaled up with nearest-neighbour (blocky glyphs no training image
  has), in colour on a tinted background, anywhere in a wider canvas;
- ``heldout-mcq``: the shape at a random place and size on a tinted, speckled
  background, in other shades of the four colours, with an outline;
- ``heldout-yesno``: three shapes (not two) scattered over the canvas instead of in a
  row, so the absent shape is the only one of the four missing.

The demo reports both: ``synth-*`` (in-distribution) and ``heldout-*`` (held out).

Generation is deterministic in ``seed``. Images are PNGs, base64 in the ``image`` cell.
The rows of both families come from the builders in :mod:`sailvl.eval.synthetic_rows`;
each family passes its :class:`~sailvl.eval.synthetic_rows.Style` (vocabulary, colour
shades, renderers).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

from . import synthetic_heldout as heldout
from . import synthetic_rows
from .synthetic_rows import Style, draw_shape, png
from .tsv import write_tsv

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "piano",
    "lemon",
    "orbit",
    "maple",
    "candle",
    "violet",
    "harbor",
]
SHAPES = synthetic_rows.SHAPES
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "black": (0, 0, 0)}
COLUMNS = ["index", "image", "question", "answer", "A", "B", "C", "D", "hint", "category", "split"]


def _text_image(word: str, rng: random.Random, size: int) -> str:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (size * 2, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size // 3)
    draw.text(
        (rng.randint(2, size // 4), rng.randint(2, size // 3)), word, fill=(0, 0, 0), font=font
    )
    return png(img)


def _shape_image(shapes: list[tuple[str, str]], rng: random.Random, size: int) -> str:
    """The shapes in a row on light grey, one per equal-width cell; draws nothing at
    random (``rng`` is there for :data:`~.synthetic_rows.ShapeRenderer`)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    cell = size // max(1, len(shapes))
    for i, (shape, color) in enumerate(shapes):
        box = (i * cell + 4, size // 4, (i + 1) * cell - 4, size * 3 // 4)
        draw_shape(draw, shape, box, COLORS[color])
    return png(img)


STYLE = Style(
    words=WORDS,
    colors=list(COLORS),
    text=_text_image,
    shapes=_shape_image,
    mcq_hint=True,
    yesno_shapes=2,
    yesno_sample_first=True,
    yesno_ask_random=False,
)
ocr_rows = partial(synthetic_rows.ocr_rows, STYLE)
mcq_rows = partial(synthetic_rows.mcq_rows, STYLE)
yesno_rows = partial(synthetic_rows.yesno_rows, STYLE)


GENERATORS: dict[str, tuple[Callable[..., list[dict[str, Any]]], str]] = {
    "synth-ocr": (ocr_rows, "anls"),
    "synth-mcq": (mcq_rows, "mcq"),
    "synth-yesno": (yesno_rows, "pope"),
}
# Not in GENERATORS: the demo's SFT rows are drawn from GENERATORS only.
HELDOUT: dict[str, tuple[Callable[..., list[dict[str, Any]]], str]] = {
    "heldout-ocr": (heldout.ocr_rows, "anls"),
    "heldout-mcq": (heldout.mcq_rows, "mcq"),
    "heldout-yesno": (heldout.yesno_rows, "pope"),
}
ALL = {**GENERATORS, **HELDOUT}


def synthetic_tsv(name: str, n: int = 24, seed: int = 0, size: int = 64) -> bytes:
    """The TSV bytes of one synthetic benchmark."""
    if name not in ALL:
        raise ValueError(f"name: unknown synthetic benchmark {name!r} (use {sorted(ALL)})")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    rows = ALL[name][0](n, random.Random(f"{name}:{seed}"), size)
    return write_tsv(rows, COLUMNS)


def write_synthetic(uri: str, n: int = 24, seed: int = 0, heldout: bool = False) -> dict[str, str]:
    """Write the synthetic benchmarks (and the held-out ones when ``heldout``) as
    ``<uri>/<name>.tsv``; return name -> TSV URI."""
    from sailvl.storage import open_store

    store = open_store(uri)
    out = {}
    for name in ALL if heldout else GENERATORS:
        store.write_bytes(f"{name}.tsv", synthetic_tsv(name, n, seed))
        out[name] = f"{uri.rstrip('/')}/{name}.tsv"
    return out
