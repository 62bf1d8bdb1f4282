"""Log-linear fits, Pearson correlation and the scaling report."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from sailvl.eval.report import load_results, scaling_report
from sailvl.eval.results import aggregate, markdown_table, normalised
from sailvl.eval.scaling import fit_log_linear, pearson


@pytest.mark.parametrize(("a", "b"), [(10.0, 5.0), (-3.5, 12.25), (60.0, 0.0), (80.0, -2.0)])
def test_fit_recovers_exact_parameters(a: float, b: float) -> None:
    tokens = [1e8, 3e8, 1e9, 4e9, 1.3e10, 5e10]
    fit = fit_log_linear(tokens, [a + b * math.log10(t) for t in tokens])
    assert fit.a == pytest.approx(a, abs=1e-9) and fit.b == pytest.approx(b, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 6


def test_fit_recovers_parameters_from_noisy_points() -> None:
    rng = random.Random(7)
    tokens = [10 ** (8 + 3 * i / 199) for i in range(200)]
    scores = [20 + 4 * math.log10(t) + rng.gauss(0, 0.5) for t in tokens]
    fit = fit_log_linear(tokens, scores)
    assert fit.a == pytest.approx(20, abs=1.0) and fit.b == pytest.approx(4, abs=0.1)
    assert 0.9 < fit.r2 < 1.0


def test_fit_rejects_unusable_input() -> None:
    with pytest.raises(ValueError, match="tokens"):
        fit_log_linear([1e9], [1.0])
    with pytest.raises(ValueError, match="tokens"):
        fit_log_linear([1e9, 1e9], [1.0, 2.0])
    with pytest.raises(ValueError, match="tokens"):
        fit_log_linear([0, 1e9], [1.0, 2.0])


def test_pearson() -> None:
    xs = [1.0, 2.0, 3.0, 4.0]
    assert pearson(xs, [2 * x + 1 for x in xs]) == pytest.approx(1.0)
    assert pearson(xs, [-x for x in xs]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pearson([1, 1], [2, 3])


def test_normalisation_and_category_averages() -> None:
    assert normalised("mme", 2100.0) == pytest.approx(75.0)
    assert normalised("ocrbench", 800.0) == pytest.approx(80.0)
    assert normalised("mcq", 55.0) == 55.0 and normalised("mcq", None) is None
    agg = aggregate(
        {
            "a": {"category": "general_vqa", "normalized": 60.0},
            "b": {"category": "general_vqa", "normalized": 80.0},
            "c": {"category": "ocr_vqa", "normalized": 50.0},
            "d": {"category": "ocr_vqa", "normalized": None},
            "e": {"category": None, "normalized": 10.0},
        }
    )
    assert agg["categories"] == {"general_vqa": 70.0, "ocr_vqa": 50.0}
    assert agg["overall"] == pytest.approx(190 / 3) and agg["understanding"] == 10.0


def _results(series: str, tokens: float, overall: float) -> dict[str, object]:
    return {
        "tokens": tokens,
        "overall": overall,
        "categories": {"ocr_vqa": overall - 1},
        "benchmarks": {
            "docvqa": {"category": "ocr_vqa", "normalized": overall + 1, "scorer": "anls"}
        },
        "labels": {"series": series},
    }


def test_scaling_report_writes_fits_plots_and_correlation(tmp_path: Path) -> None:
    tokens = [1e9, 1e10, 1e11, 1e12]
    pre = [_results("pretrain", t, 30 + 5 * math.log10(t)) for t in tokens]
    sft = [_results("sft", t, 2 * (30 + 5 * math.log10(t)) + 1) for t in tokens[:3]]
    for i, r in enumerate(pre + sft):
        d = tmp_path / "in" / str(i)
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(r))
    results = load_results([str(tmp_path / "in")])
    assert len(results) == 7
    rep = scaling_report(results, tmp_path / "out")
    fit = rep["series"]["pretrain"]["fits"]["overall"]
    assert fit["a"] == pytest.approx(30) and fit["b"] == pytest.approx(5)
    assert rep["correlation"]["pearson"] == pytest.approx(1.0) and rep["correlation"]["points"] == 3
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert "correlation.png" in pngs and "pretrain-overall.png" in pngs
    assert (tmp_path / "out" / "pretrain-overall.png").read_bytes()[:4] == b"\x89PNG"
    assert "Pearson" in (tmp_path / "out" / "report.md").read_text()


def test_markdown_table_has_table4_summary() -> None:
    md = markdown_table(
        {
            "model": "m",
            "benchmarks": {
                "mme": {
                    "category": "general_vqa",
                    "scorer": "mme",
                    "score": 1400.0,
                    "normalized": 50.0,
                }
            },
            "categories": {"general_vqa": 50.0},
            "overall": 50.0,
        }
    )
    assert "| mme | mme | 1400.00 | 50.00 |" in md
    assert md.strip().endswith("| 50.00 | - | - | - | 50.00 |")
