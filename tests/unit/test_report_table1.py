"""The demo report's caption statistics are Table 1 as the paper computes it: one row per
language, the paper's columns, distinct items over the draw divided by its samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sailvl.local.report import caption_stats_table
from sailvl.quality.stats import HEADERS, compute_stats, dataset_stats

EN = ["a red ball on the sand", "a blue cube on the grass"]
ZH = ["红色的球在沙滩上", "蓝色的方块在草地上"]


def _status_stats(uri: str) -> dict[str, float]:
    """``status.stats`` as the caption step reports it (sailvl.caption.main)."""
    rows = dataset_stats(uri)
    return {
        f"{lang}_{k}": float(v)
        for lang, s in rows.items()
        for k, v in s.to_dict().items()
        if k != "lang"
    }


def _write(tmp_path: Path, name: str, copies: int) -> str:
    from sailvl.data.dataset import DatasetWriter

    uri = f"file://{tmp_path}/{name}"
    with DatasetWriter(uri) as w:
        for c in range(copies):
            for i, (cap, lang) in enumerate([*((e, "en") for e in EN), *((z, "zh") for z in ZH)]):
                w.write(
                    {
                        "id": f"{c}-{i}",
                        "images": [],
                        "alt_text": "",
                        "caption": cap,
                        "conversations": [],
                        "source": "t",
                        "lang": lang,
                    }
                )
    return uri


def _rows(lines: list[str]) -> dict[str, list[str]]:
    out = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[1] in ("en", "zh"):
            out[cells[1]] = cells
    return out


def test_report_shows_table_1_rows_computed_the_papers_way(tmp_path: Path) -> None:
    lines = caption_stats_table(_status_stats(_write(tmp_path, "once", 1)))
    assert lines[2] == "| Dataset | Lang | Samples | " + " | ".join(HEADERS) + " |"
    rows = _rows(lines)
    en = rows["en"]
    # 6 words each; 2-grams: 5 + 5 with "on the" shared = 9 over 2 samples; 3-grams 8 / 2.
    assert en[2:6] == ["2", "6.00", "4.50", "4.00"]
    want = compute_stats(EN, "en")
    assert en[6:] == [f"{want.uniq_noun:.2f}", f"{want.uniq_verb:.2f}", f"{want.uniq_adj:.2f}"]
    zh = compute_stats(ZH, "zh")
    assert rows["zh"][2:] == [
        "2",
        *(
            f"{getattr(zh, f):.2f}"
            for f in ("avg_length", "uniq_2gram", "uniq_3gram", "uniq_noun", "uniq_verb")
        ),
        f"{zh.uniq_adj:.2f}",
    ]


def test_every_caption_twice_halves_the_unique_columns(tmp_path: Path) -> None:
    once = _rows(caption_stats_table(_status_stats(_write(tmp_path, "once", 1))))
    twice = _rows(caption_stats_table(_status_stats(_write(tmp_path, "twice", 2))))
    for lang in ("en", "zh"):
        assert twice[lang][2] == str(2 * int(once[lang][2]))
        assert twice[lang][3] == once[lang][3]  # average length unchanged
        for a, b in zip(once[lang][4:], twice[lang][4:], strict=True):
            assert float(b) == pytest.approx(float(a) / 2, abs=0.006)


def test_report_without_a_language_leaves_its_row_out() -> None:
    stats: dict[str, Any] = {"en_samples": 3.0, "en_avg_length": 5.0, "en_uniq_2gram": 1.5}
    rows = _rows(caption_stats_table(stats))
    assert list(rows) == ["en"] and rows["en"][2:5] == ["3", "5.00", "1.50"]
