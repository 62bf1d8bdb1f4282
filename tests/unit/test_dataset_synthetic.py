"""Synthetic data: deterministic, truthful captions and answers, fast, any URI."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from sailvl.data import fonts as fonts_mod
from sailvl.data.dataset import Dataset, WriterConfig
from sailvl.data.fonts import FontSet, discover_fonts
from sailvl.data.synthetic import PALETTE, SyntheticConfig, make_sample, write_synthetic

CFG = SyntheticConfig(seed=3)


def test_deterministic_per_index() -> None:
    a, b = make_sample(17, CFG), make_sample(17, CFG)
    assert a == b
    assert make_sample(18, CFG) != a
    assert make_sample(17, SyntheticConfig(seed=4))["images"] != a["images"]


def test_both_kinds_and_valid_images() -> None:
    samples = [make_sample(i, CFG) for i in range(60)]
    kinds = {s["source"] for s in samples}
    assert kinds == {"synthetic/ocr", "synthetic/shapes"}
    for s in samples:
        img = Image.open(io.BytesIO(s["images"][0]))
        assert (
            CFG.min_size <= img.width <= CFG.max_size and CFG.min_size <= img.height <= CFG.max_size
        )
        assert f"{img.width}x{img.height}" in s["caption"]
        turns = s["conversations"]
        assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)
        assert turns[0]["content"].startswith("<image>\n")


def test_ocr_answer_is_the_rendered_text_in_the_caption() -> None:
    ocr = [s for s in (make_sample(i, CFG) for i in range(40)) if s["source"] == "synthetic/ocr"]
    assert ocr
    for s in ocr:
        text = s["conversations"][1]["content"]
        colour = s["conversations"][3]["content"]
        if s["lang"] == "zh":  # drawn only where a CJK font is installed (make tools)
            assert "，".join(text.split("\n")) in s["caption"]
            assert f"用{colour}字体" in s["caption"]
        else:
            assert " / ".join(text.split("\n")) in s["caption"]
            assert f"of {colour} text" in s["caption"]


def test_shape_answers_agree_with_caption() -> None:
    shapes = [
        s for s in (make_sample(i, CFG) for i in range(60)) if s["source"] == "synthetic/shapes"
    ]
    assert shapes
    for s in shapes:
        objs = re.findall(
            r"a (\w+) (circle|square|triangle) at the ([a-z ]+?)(?:,|\.)", s["caption"]
        )
        assert objs
        texts = [t["content"].removeprefix("<image>\n") for t in s["conversations"]]
        qa = dict(zip(texts[0::2], texts[1::2], strict=True))
        assert len(qa) == 3
        for q, a in qa.items():
            if q.startswith("How many"):
                kind = q.split()[2][:-1]
                assert int(a) == sum(1 for o in objs if o[1] == kind)
            elif q.startswith("Is there"):
                col, kind = q.split()[3:5]
                assert (a == "Yes") == any(o[0] == col and o[1] == kind for o in objs)
            elif q.startswith("Where"):
                assert any(a == f"At the {o[2]}." for o in objs)
            else:
                assert a in {p[0] for p in PALETTE}


def test_pixels_match_the_caption_colour() -> None:
    s = next(
        s for s in (make_sample(i, CFG) for i in range(40)) if s["source"] == "synthetic/shapes"
    )
    img = Image.open(io.BytesIO(s["images"][0])).convert("RGB")
    bg = s["caption"].split("plain ")[1].split(" background")[0]
    want = dict((p[0], p[2]) for p in PALETTE)[bg]
    got = img.getpixel((1, 1))
    assert max(abs(g - w) for g, w in zip(got, want, strict=True)) < 12


def test_works_with_pil_default_font_only(monkeypatch: pytest.MonkeyPatch) -> None:
    only_default = FontSet(latin=(None,), cjk=())
    monkeypatch.setattr("sailvl.data.synthetic.discover_fonts", lambda: only_default)
    s = [make_sample(i, SyntheticConfig(ocr_fraction=1.0), only_default) for i in range(5)]
    assert all("the default font" in x["caption"] and x["lang"] == "en" for x in s)


def test_chinese_only_with_a_cjk_font() -> None:
    found = discover_fonts()
    assert None in found.latin
    samples = [
        make_sample(i, SyntheticConfig(ocr_fraction=1.0, zh_fraction=1.0), found) for i in range(5)
    ]
    langs = {x["lang"] for x in samples}
    assert langs == ({"zh"} if found.cjk else {"en"})
    assert fonts_mod._covers(found.latin[1], "Aa") if len(found.latin) > 1 else True


def test_write_1000_fast_and_readable(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    m = write_synthetic(
        str(tmp_path), 1000, SyntheticConfig(seed=1), WriterConfig(max_samples_per_shard=300)
    )
    elapsed = time.perf_counter() - t0
    assert m.num_samples == 1000 and [s.samples for s in m.shards] == [300, 300, 300, 100]
    assert elapsed < 20, elapsed  # a sanity bound (measured ~1.2 s), not a benchmark
    ds = Dataset.open(f"file://{tmp_path}")
    ds.validate(deep=True)
    assert ds.read_shard(3).rows[0] == make_sample(900, SyntheticConfig(seed=1))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="ocr_fraction"):
        SyntheticConfig(ocr_fraction=2)
    with pytest.raises(ValueError, match="min_size"):
        SyntheticConfig(min_size=300, max_size=256)
    with pytest.raises(ValueError, match="image_format"):
        SyntheticConfig(image_format="GIF")
