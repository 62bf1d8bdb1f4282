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
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Callable
from typing import Any

from . import synthetic_heldout as heldout
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
SHAPES = ["circle", "square", "triangle", "star"]
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "black": (0, 0, 0)}
COLUMNS = ["index", "image", "question", "answer", "A", "B", "C", "D", "hint", "category", "split"]


def _png(img: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _text_image(word: str, rng: random.Random, size: int) -> str:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (size * 2, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size // 3)
    draw.text(
        (rng.randint(2, size // 4), rng.randint(2, size // 3)), word, fill=(0, 0, 0), font=font
    )
    return _png(img)


def _shape_image(shapes: list[tuple[str, str]], size: int) -> str:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    cell = size // max(1, len(shapes))
    for i, (shape, color) in enumerate(shapes):
        x0, y0, x1, y1 = i * cell + 4, size // 4, (i + 1) * cell - 4, size * 3 // 4
        fill = COLORS[color]
        if shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif shape == "triangle":
            draw.polygon([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], fill=fill)
        else:
            cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 2
            pts = [(cx, cy - r), (cx + r // 3, cy), (cx + r, cy), (cx, cy + r // 2)]
            pts += [(cx - r, cy), (cx - r // 3, cy)]
            draw.polygon(pts, fill=fill)
    return _png(img)


def ocr_rows(n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if i % 3 == 2:
            prev = rows[-1]
            word = prev["_word"]
            q = "How many letters does the word in the image have?"
            rows.append(
                {
                    "index": i,
                    "image": str(prev["index"]),
                    "question": q,
                    "answer": str(len(word)),
                    "category": "count",
                    "_word": word,
                }
            )
            continue
        word = rng.choice(WORDS)
        q = "What is the word in the image?"
        rows.append(
            {
                "index": i,
                "image": _text_image(word, rng, size),
                "question": q,
                "answer": word,
                "category": "read",
                "_word": word,
            }
        )
    return rows


def mcq_rows(n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if i % 3 == 2:
            prev = rows[-1]
            opts = list(COLORS)
            rng.shuffle(opts)
            row = {"index": i, "image": str(prev["index"]), "question": "What colour is the shape?"}
            row.update(dict(zip("ABCD", opts, strict=True)))
            row.update(answer="ABCD"[opts.index(prev["_color"])], category="colour", split="dev")
            rows.append(row)
            continue
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        opts = SHAPES[:]
        rng.shuffle(opts)
        row = {
            "index": i,
            "image": _shape_image([(shape, color)], size),
            "question": "Which shape is shown?",
        }
        row.update(dict(zip("ABCD", opts, strict=True)))
        row.update(answer="ABCD"[opts.index(shape)], category="shape", split="dev", _color=color)
        row["hint"] = "The image shows one shape." if i % 2 else None
        rows.append(row)
    return rows


def yesno_rows(n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        present = rng.sample(SHAPES, 2)
        if i % 3 == 2:
            prev = rows[-1]
            ask = prev["_present"][1] if i % 2 else prev["_absent"]
            ans = "Yes" if ask in prev["_present"] else "No"
            row = {
                "index": i,
                "image": str(prev["index"]),
                "_present": prev["_present"],
                "_absent": prev["_absent"],
            }
            row.update(question=f"Is there a {ask} in the image?", answer=ans, category="popular")
            rows.append(row)
            continue
        absent = next(s for s in SHAPES if s not in present)
        image = _shape_image([(s, rng.choice(list(COLORS))) for s in present], size)
        yes = i % 2 == 0
        ask = present[0] if yes else absent
        row = {"index": i, "image": image, "_present": present, "_absent": absent}
        row.update(
            question=f"Is there a {ask} in the image?",
            answer="Yes" if yes else "No",
            category="random",
        )
        rows.append(row)
    return rows


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
