"""The chart's PrometheusRule through promtool: `check rules`, and `test rules` with one
unit test per alert (the alert fires for the broken series and stays quiet for a
healthy one beside it, and before its `for` has passed).

The rules are taken from the rendered chart (not a copy), so a change to the template or
its thresholds is what gets tested. Series notation: `a+bxN` is a, a+b, ... N+1 samples,
one per `interval`; time() at minute m is m*60.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import SCENARIOS, Renderer, find, tool

RUNNING = 'sailvl_operator_resource_phase{kind="%s",namespace="ml",name="%s",phase="Running"}'

# alert -> (input series, [(eval minute, [expected labels of each firing alert])])
CASES: dict[str, tuple[list[dict[str, str]], list[tuple[int, list[dict[str, str]]]]]] = {
    "SailvlStageFailed": (
        [
            {
                "series": 'sailvl_operator_resource_phase{kind="TrainStage",namespace="ml",name="s1",phase="Failed"}',
                "values": "0 0 1x10",
            },
            {"series": RUNNING % ("TrainStage", "s2"), "values": "1x12"},
        ],
        [(2, []), (6, [{"kind": "TrainStage", "namespace": "ml", "name": "s1"}])],
    ),
    "SailvlTrainRestartsRising": (
        [
            {
                "series": 'sailvl_operator_train_restarts{namespace="ml",name="s1"}',
                "values": "0x30 1x10 2x50",
            },
            {
                "series": 'sailvl_operator_train_restarts{namespace="ml",name="s2"}',
                "values": "1x90",
            },
        ],
        [(35, []), (80, [{"namespace": "ml", "name": "s1"}])],
    ),
    "SailvlTrainNoProgress": (
        [
            # s1 stalls at minute 20 (last step at t=1200 s); s2 keeps stepping; s3 has been
            # Running with no training metrics at all.
            {"series": RUNNING % ("TrainStage", "s1"), "values": "1x120"},
            {"series": RUNNING % ("TrainStage", "s2"), "values": "1x120"},
            {"series": RUNNING % ("TrainStage", "s3"), "values": "1x120"},
            {
                "series": 'sailvl_train_last_step_timestamp_seconds{namespace="ml",name="s1",pod="p0"}',
                "values": "0+60x20 1200x100",
            },
            {
                "series": 'sailvl_train_last_step_timestamp_seconds{namespace="ml",name="s2",pod="p0"}',
                "values": "0+60x120",
            },
        ],
        [
            (20, []),
            (45, [{"namespace": "ml", "name": "s3"}]),
            (60, [{"namespace": "ml", "name": "s1"}, {"namespace": "ml", "name": "s3"}]),
        ],
    ),
    "SailvlCaptionThroughputCollapsed": (
        [
            # c1: 10 captions/s for 90 minutes, then 1/s; c2: steady 10/s; c3 collapses too
            # but has Succeeded (not Running), so it must not alert.
            {"series": RUNNING % ("CaptionJob", "c1"), "values": "1x150"},
            {"series": RUNNING % ("CaptionJob", "c2"), "values": "1x150"},
            {
                "series": 'sailvl_caption_samples_total{namespace="ml",name="c1",pod="w0"}',
                "values": "0+600x90 54000+60x60",
            },
            {
                "series": 'sailvl_caption_samples_total{namespace="ml",name="c2",pod="w0"}',
                "values": "0+600x150",
            },
            {
                "series": 'sailvl_caption_samples_total{namespace="ml",name="c3",pod="w0"}',
                "values": "0+600x90 54000+60x60",
            },
        ],
        [(80, []), (100, []), (125, [{"namespace": "ml", "name": "c1"}])],
    ),
    "SailvlEvalGateFailed": (
        [
            {
                "series": 'sailvl_curriculum_gate_failures_total{namespace="ml",curriculum="cur",step="sft-knowledge-eval"}',
                "values": "0x10 1x30",
            },
            {
                "series": 'sailvl_curriculum_gate_failures_total{namespace="ml",curriculum="ok",step="pretrain-eval"}',
                "values": "0x40",
            },
        ],
        [
            (5, []),
            (15, [{"namespace": "ml", "curriculum": "cur", "step": "sft-knowledge-eval"}]),
            (40, []),
        ],
    ),
    "SailvlOperatorErrors": (
        [
            {"series": 'sailvl_operator_errors_total{kind="TrainStage"}', "values": "0+1x60"},
            {"series": 'sailvl_operator_errors_total{kind="EvalSuite"}', "values": "5x60"},
        ],
        [(10, []), (30, [{"kind": "TrainStage"}])],
    ),
}


def rule_groups(render: Renderer, values: dict[str, Any]) -> list[dict[str, Any]]:
    (rule,) = find(render(values), "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alerts_of(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def expand(template: str, labels: dict[str, str]) -> str:
    """The subset of Go templating the annotations use: `{{ $labels.x }}`."""
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)


def promtool_test(tmp_path: Path, groups: list[dict[str, Any]], alert: str) -> str:
    """Run `promtool test rules` for one alert's case; returns promtool's output."""
    rule = alerts_of(groups)[alert]
    series, checks = CASES[alert]
    alert_cases = []
    for minute, firing in checks:
        exp = []
        for labels in firing:
            full = {**labels, **rule["labels"]}
            annotations = {k: expand(v, full) for k, v in rule["annotations"].items()}
            exp.append({"exp_labels": full, "exp_annotations": annotations})
        alert_cases.append({"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": exp})
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alert_cases}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, width=1000))
    proc = subprocess.run(
        [tool("promtool"), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"promtool test rules failed for {alert}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def test_promtool_check_rules(render: Renderer, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups(render, SCENARIOS["monitoring"])}))
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(CASES)} rules found" in proc.stdout


def test_every_alert_has_a_unit_test(render: Renderer) -> None:
    alerts = alerts_of(rule_groups(render, SCENARIOS["monitoring"]))
    assert set(alerts) == set(CASES)
    for name, (_, checks) in CASES.items():
        assert any(firing for _, firing in checks), f"{name} is never shown firing"
        assert any(not firing for _, firing in checks), f"{name} is never shown quiet"


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_as_specified(render: Renderer, tmp_path: Path, alert: str) -> None:
    assert "SUCCESS" in promtool_test(tmp_path, rule_groups(render, SCENARIOS["monitoring"]), alert)


def test_thresholds_come_from_values(render: Renderer, tmp_path: Path) -> None:
    # With a 90-minute no-progress threshold the stalled stage must not alert at minute 60,
    # so the case written for the default of 30 fails: the test harness can fail.
    values = {"prometheusRule": {"enabled": True, "noProgressMinutes": 90}}
    with pytest.raises(AssertionError, match="SailvlTrainNoProgress"):
        promtool_test(tmp_path, rule_groups(render, values), "SailvlTrainNoProgress")
    labelled = {"prometheusRule": {"enabled": True, "alertLabels": {"team": "ml-infra"}}}
    for rule in alerts_of(rule_groups(render, labelled)).values():
        assert rule["labels"]["team"] == "ml-infra"
