"""The experiment report: one table and one plot per strategy, from a simulated run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sailvl.api import parse_resource
from sailvl.experiment.local import ExperimentResult
from sailvl.experiment.report import write_report

from .experiment_builders import experiment
from .test_experiment_trials import simulate

SCORES = {
    "quickQuality": lambda t, s: {"synth-ocr": {"clean": 60, "c30": 45, "c70": 20}[t.split("-n")[0]]},
    "composition": lambda t, s: {"synth-ocr": {"base": 50, "half-ocr": 40, "half-mcq": 49, "half-noisy": 53}[t]},
    "incremental": lambda t, s: {"synth-ocr": {"base": 50, "add-clean": 55, "add-c70": 40, "add-dup": 55}[t]},
    "checkpointScaling": lambda t, s: {"synth-ocr": 10 + 5 * math.log10({"anneal-a": 1e3, "anneal-b": 1e4, "anneal-c": 1e5}[t])},
    "correlation": lambda t, s: {"synth-ocr": {"p1": 10, "p2": 20, "p3": 31}[t] + (0 if s == "pretrain-eval" else 30)},
    "compare": lambda t, s: {"synth-ocr": {"know-eval": 30, "instr-eval": 40, "pref-eval": 50, "all-eval": 45}[s]},
}  # fmt: skip
EXPECT = {
    "quickQuality": ("| 1 | clean | 60.00 |", "quick_quality.png"),
    "composition": ("| noisy | 3.00 | reduce |", "composition.png"),
    "incremental": ("| c70 | 40.00 | 55.00 | -15.00 | rejected |", "incremental.png"),
    "checkpointScaling": ("| synth-ocr | 10.000 | 5.000 | 1.000 | 3 |", "scaling_synth-ocr.png"),
    "correlation": ("| p3 | 31.00 | 61.00 |", "correlation.png"),
    "compare": ("| three | 32: 30.00, 64: 40.00, 96: 50.00 | 50.00 |", "compare.png"),
}


@pytest.mark.parametrize("kind", list(SCORES))
def test_report_draws_each_strategy(kind: str, tmp_path: Path) -> None:
    spec = parse_resource(experiment(kind))[2]
    d, *_ = simulate(spec, SCORES[kind])  # type: ignore[arg-type]
    assert d.phase == "Succeeded", d.message
    result = ExperimentResult(
        name="exp", strategy=kind, phase=d.phase, reason=d.reason, message=d.message,
        rows=d.rows, decision=d.result, best=d.best, conditions=[list(c) for c in d.conditions],
    )  # fmt: skip
    summary = write_report(tmp_path, result).read_text()
    row, png = EXPECT[kind]
    assert row in summary, summary
    assert f"![{png[:-4]}]({png})" in summary
    assert (tmp_path / "report" / png).stat().st_size > 1000
    if kind in ("composition", "incremental"):
        assert "```yaml\ndata:\n- uri: file:///data/" in summary


def test_sailvl_report_draws_an_experiment_run_folder(tmp_path: Path) -> None:
    from sailvl.cli import main as cli
    from sailvl.experiment.local import _save

    spec = parse_resource(experiment("composition"))[2]
    d, *_ = simulate(spec, SCORES["composition"])  # type: ignore[arg-type]
    run = tmp_path / "run"
    run.mkdir()
    _save(
        run,
        ExperimentResult(
            "exp", "composition", d.phase, d.reason, d.message, d.rows, d.result, d.best
        ),
    )
    assert cli(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.startswith("# Experiment exp (composition)")
    assert "| noisy | 3.00 | reduce |" in summary
