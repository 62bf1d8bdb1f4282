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

The rows keep the in-distribution format (VLMEvalKit TSV columns, every third row
refers to the previous row's image), so the same scorers grade them. ``SHAPES`` and the
colour names equal those of :mod:`sailvl.eval.synthetic` (a test checks it): a model
can only answer with names it was taught.
"""

from __future__ import annotations

import base64
import io
import random
from typing import Any

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
SHAPES = ["circle", "square", "triangle", "star"]
# Other shades of the same four colour names.
COLORS = {
    "red": (178, 24, 60),
    "green": (20, 120, 90),
    "blue": (70, 120, 250),
    "black": (40, 40, 48),
}


def _png(img: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


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
    glyphs = glyphs.resize((glyphs.width * scale, glyphs.height * scale), Image.NEAREST)
    width = max(size * 3, glyphs.width + 8)
    img = _background(rng, width, size)
    ink = tuple(rng.randint(0, 90) for _ in range(3))
    x = rng.randint(2, max(2, width - glyphs.width - 2))
    y = rng.randint(2, max(2, size - glyphs.height - 2))
    img.paste(Image.new("RGB", glyphs.size, ink), (x, y), glyphs)
    return _png(img)


def _draw_shape(draw: Any, shape: str, box: tuple[int, int, int, int], fill: Any) -> None:
    x0, y0, x1, y1 = box
    outline = (255, 255, 255)
    if shape == "circle":
        draw.ellipse(box, fill=fill, outline=outline, width=2)
    elif shape == "square":
        draw.rectangle(box, fill=fill, outline=outline, width=2)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], fill=fill, outline=outline)
    else:
        cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 2
        pts = [(cx, cy - r), (cx + r // 3, cy), (cx + r, cy), (cx, cy + r // 2)]
        pts += [(cx - r, cy), (cx - r // 3, cy)]
        draw.polygon(pts, fill=fill, outline=outline)


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
        _draw_shape(draw, shape, (x0, y0, x0 + side, y0 + side), COLORS[color])
    return _png(img)


def ocr_rows(n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if i % 3 == 2:
            word = rows[-1]["_word"]
            q = "How many letters does the word in the image have?"
            rows.append(
                {"index": i, "image": str(rows[-1]["index"]), "question": q,
                 "answer": str(len(word)), "category": "count", "_word": word}
            )  # fmt: skip
            continue
        word = rng.choice(WORDS)
        rows.append(
            {"index": i, "image": _text_image(word, rng, size),
             "question": "What is the word in the image?", "answer": word,
             "category": "read", "_word": word}
        )  # fmt: skip
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
            "image": _scattered([(shape, color)], rng, size),
            "question": "Which shape is shown?",
        }
        row.update(dict(zip("ABCD", opts, strict=True)))
        row.update(answer="ABCD"[opts.index(shape)], category="shape", split="dev", _color=color)
        rows.append(row)
    return rows


def yesno_rows(n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if i % 3 == 2:
            prev = rows[-1]
            ask = prev["_present"][2] if i % 2 else prev["_absent"]
            row = {"index": i, "image": str(prev["index"]), "_present": prev["_present"]}
            row.update(
                _absent=prev["_absent"],
                question=f"Is there a {ask} in the image?",
                answer="Yes" if ask in prev["_present"] else "No",
                category="popular",
            )
            rows.append(row)
            continue
        present = rng.sample(SHAPES, 3)
        absent = next(s for s in SHAPES if s not in present)
        image = _scattered([(s, rng.choice(list(COLORS))) for s in present], rng, size)
        yes = i % 2 == 0
        ask = present[rng.randrange(3)] if yes else absent
        row = {"index": i, "image": image, "_present": present, "_absent": absent}
        row.update(
            question=f"Is there a {ask} in the image?",
            answer="Yes" if yes else "No",
            category="random",
        )
        rows.append(row)
    return rows
