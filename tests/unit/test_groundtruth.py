"""The ground-truth collections are what they claim by construction: clean answers
match the pixels, the corrupted share is the stated one and consistent, the shuffled
collection keeps the answer frequencies but not their images, the benchmark is the
same family, and everything is a pure function of the seed."""

from __future__ import annotations

import base64
import io
from collections import Counter
from pathlib import Path

import pytest

from sailvl.data import groundtruth as gt
from sailvl.eval.synthetic import COLORS


def pixel_colour(png: bytes) -> str:
    """The palette colour of the most frequent non-background pixel."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    counts = Counter(p for p in img.get_flattened_data() if p != (250, 250, 250))
    rgb = counts.most_common(1)[0][0]
    return min(COLORS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLORS[c], rgb, strict=True)))


def answers(row: dict) -> dict[str, str]:
    turns = row["conversations"]
    out = {}
    for q, a in zip(turns[::2], turns[1::2], strict=True):
        kind = next(k for k, text in gt.QUESTIONS.items() if text in q["content"])
        out[kind] = a["content"]
    return out


def test_clean_answers_match_the_pixels_and_prompts_match_the_eval() -> None:
    from sailvl.eval.prompts import build_prompt

    rows = gt.task_rows(40, seed=5)
    for row in rows:
        assert answers(row)["colour"] == pixel_colour(row["images"][0])
    prompt = build_prompt(gt.BENCHMARK, gt.SCORER, {"question": gt.QUESTIONS["shape"]})
    assert any(prompt in t["content"] for r in rows for t in r["conversations"])
    assert rows[0]["conversations"][0]["content"].startswith("<image>\n")


@pytest.mark.parametrize("corrupt", [0.3, 0.7])
def test_corrupted_share_is_as_stated_and_consistent(corrupt: float) -> None:
    clean = gt.task_rows(300, seed=9)
    noisy = gt.task_rows(300, seed=9, corrupt=corrupt)
    wrong = total = 0
    for c, n in zip(clean, noisy, strict=True):
        assert c["images"] == n["images"]  # same scenes, only answers differ
        truth, given = answers(c), answers(n)
        for kind in truth:
            total += 1
            if given[kind] != truth[kind]:
                wrong += 1
                assert given[kind] == gt.wrong_answer(kind, truth[kind])
    assert abs(wrong / total - corrupt) < 0.06, wrong / total


def test_base_shapes_asks_only_the_shape_question() -> None:
    rows = gt.task_rows(20, seed=3, name="base-shapes", kinds=("shape",))
    for row in rows:
        assert len(row["conversations"]) == 2 and row["conversations"][0]["content"].startswith(
            "<image>\n"
        )
        assert set(answers(row)) == {"shape"}
    # The default asks both questions and draws exactly what it drew before ``kinds``
    # existed (the calibrated collections must not move).
    both = gt.task_rows(20, seed=3, kinds=("shape", "colour"))
    assert both == gt.task_rows(20, seed=3)
    with pytest.raises(ValueError, match="kinds"):
        gt.task_rows(2, seed=0, kinds=("size",))


def test_wrong_answer_is_a_derangement() -> None:
    for kind, options in gt.answer_sets().items():
        mapped = [gt.wrong_answer(kind, a) for a in options]
        assert sorted(mapped) == sorted(options) and all(
            m != a for m, a in zip(mapped, options, strict=True)
        )


def test_shuffled_keeps_frequencies_and_breaks_the_link() -> None:
    rows = gt.task_rows(200, seed=4)
    mixed = gt.shuffle_answers(rows, seed=4)
    for kind in gt.QUESTIONS:
        assert Counter(answers(r)[kind] for r in rows) == Counter(answers(r)[kind] for r in mixed)
    kept = sum(
        answers(r)["colour"] == answers(m)["colour"] for r, m in zip(rows, mixed, strict=True)
    )
    assert kept / len(rows) < 0.4  # chance is about 1/4 with four colours
    assert [r["images"] for r in rows] == [m["images"] for m in mixed]


def test_text_only_rows_have_no_image_and_right_answers() -> None:
    for row in gt.text_rows(30, seed=2):
        assert row["images"] == [] and "<image>" not in row["conversations"][0]["content"]
        q, a = row["conversations"][0]["content"], row["conversations"][1]["content"]
        if q.startswith("What is"):
            x, y = (int(t) for t in q.removeprefix("What is ").rstrip("?").split(" plus "))
            assert a == str(x + y)
        else:
            assert a[::-1] in q


def test_benchmark_is_the_same_family_with_image_references() -> None:
    rows = gt.benchmark_rows(9, seed=3)
    assert len(rows) == 9 and [r["index"] for r in rows] == list(range(9))
    for r in rows:
        assert r["answer"] in gt.answer_sets()[r["category"]]
        if r["category"] == "colour":
            assert r["answer"] == pixel_colour(base64.b64decode(r["image"]))
        else:
            assert r["image"] == str(r["index"] - 1)  # the scene of the row before


def test_colour_benchmark_is_the_colour_half_with_its_images() -> None:
    rows = gt.benchmark_rows(10, seed=3)
    colours = gt.colour_rows(rows)
    assert [r["index"] for r in colours] == list(range(5))
    assert [(r["image"], r["answer"]) for r in colours] == [
        (r["image"], r["answer"]) for r in rows if r["category"] == "colour"
    ]
    for r in colours:
        assert r["answer"] == pixel_colour(base64.b64decode(r["image"]))


def test_write_groundtruth_writes_every_collection(tmp_path: Path) -> None:
    from sailvl.data.dataset import Dataset
    from sailvl.eval.tsv import load_benchmark

    sizes = gt.Sizes(base=6, candidate=8, anneal=4, warmup=5, bench=6)
    uris = gt.write_groundtruth(f"file://{tmp_path}", sizes)
    benches = (gt.BENCHMARK, gt.COLOUR_BENCHMARK)
    counts = {n: Dataset.open(u).manifest.num_samples for n, u in uris.items() if n not in benches}
    assert counts == {
        "base": 6, "duplicate": 6, "clean": 8, "noisy-30": 8, "noisy-70": 8, "shuffled": 8,
        "text-only": 8, "anneal": 4, "warmup": 5, "base-shapes": 6,
    }  # fmt: skip
    bench = load_benchmark(uris[gt.BENCHMARK])
    assert len(bench.records) == 6 and not bench.errors
    colours = load_benchmark(uris[gt.COLOUR_BENCHMARK])
    assert len(colours.records) == 3 and not colours.errors
    base = sorted((tmp_path / "data" / "base").glob("*.parquet"))
    dup = sorted((tmp_path / "data" / "duplicate").glob("*.parquet"))
    assert [p.read_bytes() for p in base] == [p.read_bytes() for p in dup]
    # Pure in the seed: a second write is byte-identical; another seed differs.
    again = gt.write_groundtruth(f"file://{tmp_path}/again", sizes)
    assert set(again) == set(uris)
    first = sorted((tmp_path / "data" / "noisy-70").glob("*.parquet"))
    second = sorted((tmp_path / "again" / "data" / "noisy-70").glob("*.parquet"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    other = gt.write_groundtruth(f"file://{tmp_path}/other", sizes, seed=1)
    third = sorted((tmp_path / "other" / "data" / "noisy-70").glob("*.parquet"))
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in third]
    assert other[gt.BENCHMARK].endswith("/bench/gt-shapes.tsv")


def test_bad_sizes_and_corruption_are_refused() -> None:
    with pytest.raises(ValueError, match="candidate"):
        gt.Sizes(candidate=0)
    with pytest.raises(ValueError, match="corrupt"):
        gt.task_rows(3, seed=0, corrupt=1.5)


def test_cli_writes_the_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--base", "2", "--candidate", "3", "--anneal", "2", "--warmup", "2", "--bench", "4"]
    assert gt.main([str(tmp_path / "gt"), *args]) == 0
    printed = capsys.readouterr().out
    assert f"noisy-70: file://{tmp_path}/gt/data/noisy-70" in printed
    assert (tmp_path / "gt" / "bench" / "gt-shapes.tsv").exists()


def test_local_setup_profile_is_known(tmp_path: Path) -> None:
    from sailvl.local.assets import ensure_assets

    with pytest.raises(ValueError, match="'groundtruth'"):
        ensure_assets(f"file://{tmp_path}", "ground-truth")
