"""The rows of the synthetic benchmarks, written once for both families.

:mod:`sailvl.eval.synthetic` (in distribution) and :mod:`sailvl.eval.synthetic_heldout`
(held out) ask the same questions with the same answer sets; they differ only in how
an image looks and in which words and colour shades are drawn. A :class:`Style` holds
that difference, and the three builders here (``ocr_rows``, ``mcq_rows``,
``yesno_rows``) turn a style into VLMEvalKit rows. Every third row refers to the
previous row's image (its ``image`` cell is that row's index, VLMEvalKit's
image-reference convention) and asks a second question about it.

The builders draw from ``rng`` in one fixed order, so a benchmark is a pure function
of its seed. Three style fields exist only to keep each family's historic draw order
(``yesno_shapes``, ``yesno_sample_first``, ``yesno_ask_random``): changing the order
would change every generated file, and with it the demo's SFT data and baselines.
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SHAPES = ["circle", "square", "triangle", "star"]

TextRenderer = Callable[[str, random.Random, int], str]
"""``(word, rng, size) -> base64 PNG`` of the word."""
ShapeRenderer = Callable[[list[tuple[str, str]], random.Random, int], str]
"""``([(shape, colour name), ...], rng, size) -> base64 PNG`` of those shapes."""


@dataclass(frozen=True, kw_only=True)
class Style:
    """How one family of synthetic benchmarks is drawn."""

    words: Sequence[str]
    """The OCR vocabulary."""
    colors: Sequence[str]
    """The colour names, in the order options and draws use them."""
    text: TextRenderer
    """Renders an OCR word."""
    shapes: ShapeRenderer
    """Renders the shapes of an MCQ or yes/no image."""
    mcq_hint: bool
    """Whether odd MCQ image rows carry a ``hint`` cell."""
    yesno_shapes: int
    """How many of the four shapes a yes/no image shows."""
    yesno_sample_first: bool
    """Whether the yes/no builder draws the present shapes on every row (reference rows
    too, discarding them) rather than only on image rows."""
    yesno_ask_random: bool
    """Whether a "Yes" question asks about a random present shape (else the first)."""


def png(img: Any) -> str:
    """A PIL image as base64 PNG, the form of a TSV ``image`` cell."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def draw_shape(
    draw: Any, shape: str, box: tuple[int, int, int, int], fill: Any, outline: Any = None
) -> None:
    """Draw one of ``SHAPES`` filling ``box``; ``outline=None`` draws no outline."""
    x0, y0, x1, y1 = box
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


def ocr_rows(style: Style, n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    """Read the word; reference rows ask how many letters the previous word has."""
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
        word = rng.choice(list(style.words))
        rows.append(
            {"index": i, "image": style.text(word, rng, size),
             "question": "What is the word in the image?", "answer": word,
             "category": "read", "_word": word}
        )  # fmt: skip
    return rows


def mcq_rows(style: Style, n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    """Which shape (four options, answer letter); reference rows ask its colour."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if i % 3 == 2:
            prev = rows[-1]
            opts = list(style.colors)
            rng.shuffle(opts)
            row = {"index": i, "image": str(prev["index"]), "question": "What colour is the shape?"}
            row.update(dict(zip("ABCD", opts, strict=True)))
            row.update(answer="ABCD"[opts.index(prev["_color"])], category="colour", split="dev")
            rows.append(row)
            continue
        shape, color = rng.choice(SHAPES), rng.choice(list(style.colors))
        opts = SHAPES[:]
        rng.shuffle(opts)
        row = {
            "index": i,
            "image": style.shapes([(shape, color)], rng, size),
            "question": "Which shape is shown?",
        }
        row.update(dict(zip("ABCD", opts, strict=True)))
        row.update(answer="ABCD"[opts.index(shape)], category="shape", split="dev", _color=color)
        if style.mcq_hint:
            row["hint"] = "The image shows one shape." if i % 2 else None
        rows.append(row)
    return rows


def yesno_rows(style: Style, n: int, rng: random.Random, size: int = 64) -> list[dict[str, Any]]:
    """POPE-style "Is there a <shape>?", half Yes; reference rows ask about the previous
    image's last shape (odd rows, Yes) or its absent one (even rows, No)."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        present = rng.sample(SHAPES, style.yesno_shapes) if style.yesno_sample_first else None
        if i % 3 == 2:
            prev = rows[-1]
            ask = prev["_present"][-1] if i % 2 else prev["_absent"]
            row = {"index": i, "image": str(prev["index"]), "_present": prev["_present"]}
            row.update(
                _absent=prev["_absent"],
                question=f"Is there a {ask} in the image?",
                answer="Yes" if ask in prev["_present"] else "No",
                category="popular",
            )
            rows.append(row)
            continue
        if present is None:
            present = rng.sample(SHAPES, style.yesno_shapes)
        absent = next(s for s in SHAPES if s not in present)
        image = style.shapes([(s, rng.choice(list(style.colors))) for s in present], rng, size)
        yes = i % 2 == 0
        if yes:
            ask = present[rng.randrange(len(present))] if style.yesno_ask_random else present[0]
        else:
            ask = absent
        row = {"index": i, "image": image, "_present": present, "_absent": absent}
        row.update(
            question=f"Is there a {ask} in the image?",
            answer="Yes" if yes else "No",
            category="random",
        )
        rows.append(row)
    return rows
