"""Synthetic stand-ins for the understanding suite, in the TSV shape each task expects.

The real sets (DetailCaps, IDL-WDS, DocStruct, SynthText, SynthDoG) cannot be
downloaded here; these have the same columns, instructions and answer forms
(:mod:`sailvl.eval.understanding`), so the runner, the scorers and the reports are
exercised exactly as on the real data:

- ``detailcaps`` / ``detailcaps-cn``: one to three coloured shapes placed in a 3x3 grid
  on a plain background; ``answer`` holds three references written in three different
  styles (a list literal, as DetailCaps stores its three annotators);
- ``idl-wds``: a scanned-looking page (off-white, speckled) of English lines;
- ``docstruct``: a form: an upper-case title, then ``Field: value`` lines;
- ``synthtext``: one or two words in a contrasting colour over a busy scene of random
  blobs;
- ``synthdog-en`` / ``synthdog-zh``: a paragraph on a light "paper" laid over a
  coloured, cluttered background (SynthDoG's layout), English or Chinese.

Chinese text is drawn with a CJK font (:func:`sailvl.data.fonts.require_cjk_font`);
without one a Chinese task raises :class:`~sailvl.data.fonts.MissingFontError` instead
of quietly becoming English or rendering empty boxes. A TSV is a pure function of
(task, n, seed, the fonts installed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sailvl.data.fonts import FontSet, discover_fonts, load_font, require_cjk_font
from sailvl.data.synthetic import CELLS, PALETTE, WORDS_EN, WORDS_ZH

from .synthetic_rows import SHAPES, draw_shape, png
from .tsv import write_tsv
from .understanding import COLUMNS, TASKS, Task

SHAPES_ZH = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形"}
FIELDS = ("Invoice", "Date", "Account", "Amount", "Total", "Due", "Reference", "Phone")
Lines = list[str]


def _caption_scene(rng: random.Random, task: Task, size: int) -> tuple[str, list[str]]:
    """(base64 PNG, three references) of a shape scene."""
    from PIL import Image, ImageDraw

    bg = rng.randrange(len(PALETTE))
    cells = rng.sample(range(9), rng.randint(1, 3))
    items = []
    img = Image.new("RGB", (size, size), PALETTE[bg][2])
    draw = ImageDraw.Draw(img)
    step = size // 3
    for cell in cells:
        shape = rng.choice(SHAPES)
        colour = rng.choice([i for i in range(len(PALETTE)) if i != bg])
        x, y = (cell % 3) * step, (cell // 3) * step
        draw_shape(draw, shape, (x + 4, y + 4, x + step - 4, y + step - 4), PALETTE[colour][2])
        items.append((shape, colour, cell))
    refs = _refs_zh(bg, items) if task.lang == "zh" else _refs_en(bg, items)
    return png(img), refs


def _refs_en(bg: int, items: list[tuple[str, int, int]]) -> list[str]:
    back = PALETTE[bg][0]
    parts = [f"a {PALETTE[c][0]} {s} at the {CELLS[p][0]}" for s, c, p in items]
    n = len(items)
    noun = "shape" if n == 1 else "shapes"
    return [
        f"The image shows {n} {noun} on a plain {back} background: " + ", ".join(parts) + ".",
        f"A flat {back} backdrop with " + " and ".join(parts) + ". Nothing else is visible.",
        " ".join(f"There is {p}." for p in parts) + f" The rest of the {back} canvas is empty.",
    ]


def _refs_zh(bg: int, items: list[tuple[str, int, int]]) -> list[str]:
    back = PALETTE[bg][1]
    parts = [f"{CELLS[p][1]}有一个{PALETTE[c][1]}的{SHAPES_ZH[s]}" for s, c, p in items]
    return [
        f"图片是纯{back}的背景，上面有{len(items)}个图形：" + "，".join(parts) + "。",
        f"在{back}的底色上，" + "；".join(parts) + "。除此之外没有其他内容。",
        "".join(f"{p}。" for p in parts) + f"画面其余部分是空白的{back}。",
    ]


def _words(rng: random.Random, zh: bool, lo: int, hi: int) -> str:
    words, sep = (WORDS_ZH, "") if zh else (WORDS_EN, " ")
    return sep.join(rng.choice(words) for _ in range(rng.randint(lo, hi)))


def _lines(rng: random.Random, task: Task) -> Lines:
    zh = task.lang == "zh"
    if task.name == "docstruct":
        title = _words(rng, False, 2, 3).upper()
        fields = rng.sample(FIELDS, rng.randint(2, 4))
        return [title, *(f"{f}: {rng.randint(10, 99999)}" for f in fields)]
    if task.name == "synthtext":
        return [_words(rng, zh, 1, 2) for _ in range(rng.randint(1, 2))]
    return [_words(rng, zh, 3, 5) for _ in range(rng.randint(3, 6))]


def _render(rng: random.Random, task: Task, lines: Lines, font_path: str | None) -> str:
    """Draw ``lines`` in the task's layout; returns a base64 PNG."""
    from PIL import Image, ImageDraw

    font = load_font(font_path, 16)
    boxes = [font.getbbox(line) for line in lines]
    line_h = max(b[3] for b in boxes) + 6
    text_w = max(b[2] for b in boxes)
    margin = 16 if task.name != "synthtext" else 24
    w, h = text_w + 2 * margin, line_h * len(lines) + 2 * margin
    if task.name in ("idl-wds", "docstruct"):
        img = Image.new("RGB", (w, h), (246, 244, 236))
        draw = ImageDraw.Draw(img)
        for _ in range(w * h // 60):  # scanner speckle
            draw.point((rng.randrange(w), rng.randrange(h)), fill=(200, 200, 196))
        ink, x0, y0 = (25, 25, 30), margin, margin
    else:
        bg = rng.randrange(len(PALETTE))
        img = Image.new("RGB", (w, h), PALETTE[bg][2])
        draw = ImageDraw.Draw(img)
        for _ in range(8):  # clutter: the "scene" or the background photo
            x, y = rng.randrange(w), rng.randrange(h)
            r = rng.randint(6, 30)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=PALETTE[rng.randrange(len(PALETTE))][2])
        x0, y0 = margin, margin
        if task.name == "synthtext":
            ink = (255, 255, 255) if sum(PALETTE[bg][2]) < 380 else (0, 0, 0)
            draw.rectangle(
                (x0 - 4, y0 - 4, x0 + text_w + 4, y0 + line_h * len(lines)), fill=PALETTE[bg][2]
            )
        else:  # SynthDoG: a sheet of paper over the background
            draw.rectangle(
                (x0 - 8, y0 - 8, x0 + text_w + 8, y0 + line_h * len(lines) + 4),
                fill=(250, 248, 240),
            )
            ink = (20, 20, 20)
    for k, line in enumerate(lines):
        draw.text((x0, y0 + k * line_h), line, fill=ink, font=font)
    return png(img)


def task_rows(
    name: str, n: int, rng: random.Random, fonts: FontSet | None = None
) -> list[dict[str, Any]]:
    """``n`` rows of task ``name``, each with its own image."""
    task = TASKS[name]
    fonts = fonts if fonts is not None else discover_fonts()
    cjk = require_cjk_font(fonts) if task.lang == "zh" and task.kind == "transcription" else None
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"index": i, "question": task.question}
        if task.kind == "caption":
            image, refs = _caption_scene(rng, task, 96)
            row.update(image=image, answer=repr(refs), category="shapes")
        else:
            lines = _lines(rng, task)
            font = cjk if task.lang == "zh" else rng.choice(fonts.latin)
            row.update(image=_render(rng, task, lines, font), answer="\n".join(lines))
            row["category"] = "form" if task.name == "docstruct" else "page"
        rows.append(row)
    return rows


def understanding_tsv(name: str, n: int = 24, seed: int = 0, fonts: FontSet | None = None) -> bytes:
    """The TSV bytes of one task's stand-in."""
    if name not in TASKS:
        raise ValueError(f"name: {name!r} is not an understanding task (use {sorted(TASKS)})")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    return write_tsv(task_rows(name, n, random.Random(f"{name}:{seed}"), fonts), COLUMNS)


def write_understanding(
    uri: str, n: int = 24, seed: int = 0, names: Sequence[str] | None = None
) -> dict[str, str]:
    """Write the stand-ins of ``names`` (default: every task) as ``<uri>/<name>.tsv``;
    return name -> TSV URI.

    Raises :class:`~sailvl.data.fonts.MissingFontError` before writing anything when a
    Chinese transcription task is asked for and no CJK font is installed."""
    from sailvl.storage import open_store

    names = list(TASKS) if names is None else list(names)
    unknown = [x for x in names if x not in TASKS]
    if unknown:
        raise ValueError(f"names: {unknown} are not understanding tasks (use {sorted(TASKS)})")
    fonts = discover_fonts()
    if any(TASKS[x].lang == "zh" and TASKS[x].kind == "transcription" for x in names):
        require_cjk_font(fonts)
    store = open_store(uri)
    out = {}
    for name in names:
        store.write_bytes(f"{name}.tsv", understanding_tsv(name, n, seed, fonts))
        out[name] = f"{uri.rstrip('/')}/{name}.tsv"
    return out
