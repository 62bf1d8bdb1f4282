"""Deterministic synthetic data: OCR renders and shape scenes with captions and VQA.

Used by the tests and the embedded demo instead of downloaded data. Sample `i` of seed
`s` is a pure function of (s, i, config, fonts found): it draws from its own
`random.Random(f"{s}:{i}")`, so any slice can be regenerated independently and in any
order. Colours come from a named palette, so every caption and answer states the truth
about its image (text, colours, counts, positions).

- OCR: one to three lines of English words (or Chinese, when a CJK font exists) in a
  random font, size, colour and background; caption = a detailed description that
  quotes the text; VQA: "What is written in the image?" -> the text, plus colour turns.
- Shapes: circles / squares / triangles in distinct cells of a 3x3 grid; caption lists
  every shape with its colour and position; VQA: counting, colour, position, yes/no.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Any

from sailvl.data.dataset import DatasetWriter, WriterConfig
from sailvl.data.fonts import FontSet, discover_fonts, load_font
from sailvl.data.manifest import Manifest

# (English name, Chinese name, RGB)
PALETTE = (
    ("black", "黑色", (20, 20, 20)),
    ("white", "白色", (245, 245, 245)),
    ("red", "红色", (220, 30, 30)),
    ("green", "绿色", (30, 160, 60)),
    ("blue", "蓝色", (30, 70, 220)),
    ("yellow", "黄色", (240, 210, 40)),
    ("orange", "橙色", (245, 140, 20)),
    ("purple", "紫色", (130, 50, 170)),
    ("gray", "灰色", (128, 128, 128)),
    ("pink", "粉色", (240, 150, 190)),
    ("brown", "棕色", (120, 70, 30)),
    ("cyan", "青色", (40, 200, 210)),
)
WORDS_EN = (  # noqa: SIM905
    "data model vision language scale train token image caption quality stream shard "
    "river mountain coffee window garden market summer winter orange planet signal "
    "bridge silver garden rocket castle forest harbor lantern meadow pixel vector "
    "matrix neuron kernel batch epoch market ticket station museum library open close "
    "sale price total invoice receipt north south east west hello welcome exit push "
    "pull stop slow fast cloud storm light shadow paper ink music dance story"
).split()  # noqa: SIM905
WORDS_ZH = "数据 模型 视觉 语言 训练 图像 描述 质量 城市 山水 咖啡 花园 市场 夏天 冬天 火车 博物馆 图书馆 欢迎 出口 价格 总计 发票 北京 上海 音乐 故事 光明 云朵".split()  # noqa: SIM905
CELLS = (
    ("top left", "左上"),
    ("top", "上方"),
    ("top right", "右上"),
    ("left", "左侧"),
    ("center", "中间"),
    ("right", "右侧"),
    ("bottom left", "左下"),
    ("bottom", "下方"),
    ("bottom right", "右下"),
)
SHAPES = ("circle", "square", "triangle")


@dataclass(kw_only=True)
class SyntheticConfig:
    """What the generator produces."""

    # Seed: sample i of a seed is always the same sample.
    seed: int = 0
    # Share of OCR renders; the rest are shape scenes.
    ocr_fraction: float = 0.5
    # Share of OCR samples in Chinese (only when a CJK font was found; else 0).
    zh_fraction: float = 0.3
    # Image side bounds in pixels (small keeps CPU runs fast).
    min_size: int = 64
    max_size: int = 256
    # Encoding of the stored image bytes: "JPEG" or "PNG".
    image_format: str = "JPEG"
    # The `source` column value and the id prefix.
    source: str = "synthetic"

    def __post_init__(self) -> None:
        for name in ("ocr_fraction", "zh_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1]")
        if not 32 <= self.min_size <= self.max_size:
            raise ValueError("min_size: must be >= 32 and <= max_size")
        if self.image_format not in ("JPEG", "PNG"):
            raise ValueError("image_format: must be JPEG or PNG")


def _contrasting(rng: random.Random, bg: int) -> int:
    def lum(i: int) -> float:
        r, g, b = PALETTE[i][2]
        return 0.299 * r + 0.587 * g + 0.114 * b

    choices = [i for i in range(len(PALETTE)) if i != bg and abs(lum(i) - lum(bg)) > 70]
    return rng.choice(choices)


def _encode(img: Any, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def _ocr(rng: random.Random, cfg: SyntheticConfig, fonts: FontSet) -> dict[str, Any]:
    from PIL import Image, ImageDraw

    zh = bool(fonts.cjk) and rng.random() < cfg.zh_fraction
    words, sep = (WORDS_ZH, "") if zh else (WORDS_EN, " ")
    lines = [
        sep.join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.randint(1, 3))
    ]
    if not zh and rng.random() < 0.3:
        lines = [ln.title() if rng.random() < 0.5 else ln.upper() for ln in lines]
    path = rng.choice(fonts.cjk if zh else fonts.latin)
    size = rng.randint(12, 32)
    bg, fg = rng.randrange(len(PALETTE)), 0
    fg = _contrasting(rng, bg)
    # Shrink the font until the text block fits the largest allowed image.
    while True:
        font = load_font(path, size)
        boxes = [font.getbbox(ln) for ln in lines]
        width = max(b[2] - min(b[0], 0) for b in boxes)
        line_h = max(b[3] for b in boxes) + size // 4
        if (width + 16 <= cfg.max_size and line_h * len(lines) + 16 <= cfg.max_size) or size <= 8:
            break
        size -= 2
    w = min(cfg.max_size, max(cfg.min_size, width + rng.randint(16, 48)))
    h = min(cfg.max_size, max(cfg.min_size, line_h * len(lines) + rng.randint(16, 48)))
    img = Image.new("RGB", (w, h), PALETTE[bg][2])
    draw = ImageDraw.Draw(img)
    x0, y0 = (
        rng.randint(4, max(4, w - width - 4)),
        rng.randint(4, max(4, h - line_h * len(lines) - 4)),
    )
    for k, ln in enumerate(lines):
        draw.text((x0, y0 + k * line_h), ln, font=font, fill=PALETTE[fg][2])
    text = "\n".join(lines)
    style = "the default" if path is None else path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    bg_en, bg_zh, fg_en, fg_zh = PALETTE[bg][0], PALETTE[bg][1], PALETTE[fg][0], PALETTE[fg][1]
    if zh:
        caption = f"一张{w}x{h}像素的图片，{bg_zh}背景上用{fg_zh}字体写着{len(lines)}行中文：“{'，'.join(lines)}”。"
        q_text, q_col, a_col = "图片中写了什么？", "文字是什么颜色？", fg_zh
    else:
        caption = (
            f"A {w}x{h} pixel image with a plain {bg_en} background showing {len(lines)} "
            f"line{'s' if len(lines) > 1 else ''} of {fg_en} text in the {style} font. "
            f'The text reads: "{" / ".join(lines)}".'
        )
        q_text, q_col, a_col = "What is written in the image?", "What colour is the text?", fg_en
    turns = [
        {"role": "user", "content": f"<image>\n{q_text}"},
        {"role": "assistant", "content": text},
        {"role": "user", "content": q_col},
        {"role": "assistant", "content": a_col},
    ]
    alt = rng.choice(["text", "sign", "words", "screenshot", ""])
    return {
        "img": img,
        "caption": caption,
        "turns": turns,
        "lang": "zh" if zh else "en",
        "alt": alt,
    }


def _shapes(rng: random.Random, cfg: SyntheticConfig) -> dict[str, Any]:
    from PIL import Image, ImageDraw

    side = rng.randint(max(cfg.min_size, 96) if cfg.max_size >= 96 else cfg.min_size, cfg.max_size)
    bg = rng.randrange(len(PALETTE))
    img = Image.new("RGB", (side, side), PALETTE[bg][2])
    draw = ImageDraw.Draw(img)
    cells = rng.sample(range(9), rng.randint(1, 5))
    cell = side / 3
    objs = []
    for c in sorted(cells):
        kind, col = rng.choice(SHAPES), _contrasting(rng, bg)
        cx, cy = (c % 3 + 0.5) * cell, (c // 3 + 0.5) * cell
        r = cell * rng.uniform(0.25, 0.42)
        box = (cx - r, cy - r, cx + r, cy + r)
        if kind == "circle":
            draw.ellipse(box, fill=PALETTE[col][2])
        elif kind == "square":
            draw.rectangle(box, fill=PALETTE[col][2])
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=PALETTE[col][2])
        objs.append((kind, PALETTE[col][0], CELLS[c][0]))
    counts = {k: sum(1 for o in objs if o[0] == k) for k in SHAPES}
    listing = ", ".join(f"a {col} {kind} at the {pos}" for kind, col, pos in objs)
    summary = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in counts.items() if n)
    caption = (
        f"A {side}x{side} pixel image with a plain {PALETTE[bg][0]} background and "
        f"{len(objs)} shape{'s' if len(objs) > 1 else ''}: {listing}. In total: {summary}."
    )
    kind_q = rng.choice(SHAPES)
    target = rng.choice(objs)
    probe = (rng.choice(SHAPES), rng.choice(PALETTE)[0])
    present = any(o[0] == probe[0] and o[1] == probe[1] for o in objs)
    qa = [
        (f"How many {kind_q}s are there in the image?", str(counts[kind_q])),
        (f"What colour is the {target[0]} at the {target[2]}?", target[1]),
        (f"Where is the {target[1]} {target[0]}?", f"At the {target[2]}."),
        (f"Is there a {probe[1]} {probe[0]} in the image?", "Yes" if present else "No"),
    ]
    turns: list[dict[str, str]] = []
    for k, (q, a) in enumerate(rng.sample(qa, 3)):
        turns += [
            {"role": "user", "content": ("<image>\n" if k == 0 else "") + q},
            {"role": "assistant", "content": a},
        ]
    alt = rng.choice(["shapes", "geometry", "abstract", ""])
    return {"img": img, "caption": caption, "turns": turns, "lang": "en", "alt": alt}


def make_sample(
    index: int, config: SyntheticConfig, fonts: FontSet | None = None
) -> dict[str, Any]:
    """Sample `index` of `config.seed`, as a dataset row (see `sailvl.data.manifest`)."""
    rng = random.Random(f"{config.seed}:{index}")
    fonts = fonts or discover_fonts()
    kind = "ocr" if rng.random() < config.ocr_fraction else "shapes"
    parts = _ocr(rng, config, fonts) if kind == "ocr" else _shapes(rng, config)
    return {
        "id": f"{config.source}-{config.seed}-{index:08d}",
        "images": [_encode(parts["img"], config.image_format)],
        "alt_text": parts["alt"],
        "caption": parts["caption"],
        "conversations": parts["turns"],
        "source": f"{config.source}/{kind}",
        "lang": parts["lang"],
    }


def write_synthetic(
    uri: str,
    num_samples: int,
    config: SyntheticConfig | None = None,
    writer: WriterConfig | None = None,
    *,
    start: int = 0,
) -> Manifest:
    """Write samples `start .. start+num_samples-1` as a dataset at `uri`."""
    config = config or SyntheticConfig()
    fonts = discover_fonts()
    meta = {"generator": "sailvl.data.synthetic", "seed": config.seed, "start": start}
    # No context manager: on an exception the manifest must stay unwritten.
    out = DatasetWriter(uri, writer, meta=meta)
    for i in range(start, start + num_samples):
        out.write(make_sample(i, config, fonts))
    return out.close()
