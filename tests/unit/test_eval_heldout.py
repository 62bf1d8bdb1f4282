"""The held-out synthetic benchmarks: same questions and answer sets as the demo's
in-distribution ones, drawn differently, and never used for the demo's SFT data."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from sailvl.eval import synthetic, synthetic_heldout
from sailvl.eval.synthetic import GENERATORS, HELDOUT, synthetic_tsv, write_synthetic
from sailvl.eval.tsv import parse_tsv
from sailvl.local.report import which_set


def _image(cell: str) -> object:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(cell))).convert("RGB")


@pytest.mark.parametrize("name", sorted(HELDOUT))
def test_heldout_tsvs_are_vlmevalkit_shaped_and_deterministic(name: str) -> None:
    a = synthetic_tsv(name, n=9, seed=3)
    assert a == synthetic_tsv(name, n=9, seed=3) != synthetic_tsv(name, n=9, seed=4)
    rows, errors, total = parse_tsv(a)
    assert total == 9 and not errors
    refs = [r for r in rows if len(r["image"]) <= 64]
    assert len(refs) == 3 and all(any(o["index"] == r["image"] for o in rows) for r in refs)
    twin = name.replace("heldout-", "synth-")
    assert HELDOUT[name][1] == GENERATORS[twin][1]  # scored the same way
    # The same questions as the twin (the answer set is shared too: see below).
    twin_rows, _, _ = parse_tsv(synthetic_tsv(twin, n=30, seed=3))
    held_rows, _, _ = parse_tsv(synthetic_tsv(name, n=30, seed=3))
    strip = {r["question"].split(" a ")[0] for r in twin_rows}
    assert {r["question"].split(" a ")[0] for r in held_rows} <= strip


def test_built_differently_words_font_and_layout() -> None:
    assert not set(synthetic_heldout.WORDS) & set(synthetic.WORDS)
    assert synthetic_heldout.SHAPES == synthetic.SHAPES
    assert set(synthetic_heldout.COLORS) == set(synthetic.COLORS)
    assert synthetic_heldout.COLORS != synthetic.COLORS  # other shades
    held, _, _ = parse_tsv(synthetic_tsv("heldout-ocr", n=30))
    words = {r["answer"] for r in held if r["category"] == "read"}
    assert words and words <= set(synthetic_heldout.WORDS)
    ref, _, _ = parse_tsv(synthetic_tsv("synth-ocr", n=3))
    img, ref_img = _image(held[0]["image"]), _image(ref[0]["image"])
    assert img.size != ref_img.size  # a wider canvas
    assert img.getpixel((0, 0)) != (255, 255, 255)  # a tinted background
    yes, _, _ = parse_tsv(synthetic_tsv("heldout-yesno", n=6))
    assert "triangle" in synthetic_tsv("heldout-yesno", n=30).decode()
    assert {r["answer"] for r in yes} <= {"Yes", "No"}


def test_heldout_tsvs_written_only_when_asked(tmp_path: Path) -> None:
    assert set(write_synthetic(f"file://{tmp_path}/a", n=3)) == set(GENERATORS)
    both = write_synthetic(f"file://{tmp_path}/b", n=3, heldout=True)
    assert set(both) == set(GENERATORS) | set(HELDOUT)
    assert (tmp_path / "b" / "heldout-ocr.tsv").exists()


def test_demo_sft_rows_come_only_from_the_in_distribution_generators(tmp_path: Path) -> None:
    from sailvl.data.dataset import Dataset
    from sailvl.local.assets import write_bench_style

    write_bench_style(f"file://{tmp_path}/sft", 30, seed=303)
    ds = Dataset.open(f"file://{tmp_path}/sft")
    sources = {row["source"] for i in range(len(ds.shards)) for row in ds.read_shard(i).rows}
    assert sources == set(GENERATORS)
    answers = {
        row["conversations"][1]["content"]
        for i in range(len(ds.shards))
        for row in ds.read_shard(i).rows
    }
    assert not answers & set(synthetic_heldout.WORDS)


def test_report_says_which_is_which() -> None:
    assert which_set("synth-ocr") == "in-distribution"
    assert which_set("heldout-ocr") == "held-out"
    assert which_set("docvqa") == ""
