"""The dashboard and the alert rules only use metrics the code exports
(sailvl/runtime/metrics.py), and the dashboard is valid Grafana JSON with the panels the
platform team asked for."""

from __future__ import annotations

import json
import re
from typing import Any

from sailvl.runtime import metrics
from tests.chart.helpers import CHART, SCENARIOS, Renderer, find

NAME = re.compile(r"\bsailvl_[a-z0-9_]+\b")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "dashboards" / "sailvl.json").read_text())
    return loaded


def panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_exprs(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(dash) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"] if isinstance(var["query"], dict) else var["query"])
    return exprs


def rule_exprs(render: Renderer) -> list[str]:
    (rule,) = find(render(SCENARIOS["monitoring"]), "PrometheusRule")
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


def used(exprs: list[str]) -> set[str]:
    # `by (...)`/label names are not sailvl_-prefixed, so every match is a metric name.
    return {m for e in exprs for m in NAME.findall(e)}


def test_rules_use_only_exported_metrics(render: Renderer) -> None:
    names = used(rule_exprs(render))
    assert len(names) >= 6
    assert names - metrics.series_names() == set()


def test_dashboard_uses_only_exported_metrics() -> None:
    names = used(dashboard_exprs(dashboard()))
    assert len(names) >= 15
    assert names - metrics.series_names() == set()


def test_the_check_catches_an_unknown_name() -> None:
    assert used(["rate(sailvl_train_tokens_totl[5m])"]) - metrics.series_names() == {
        "sailvl_train_tokens_totl"
    }


def test_dashboard_is_grafana_json_with_the_asked_for_panels(render: Renderer) -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels(dash):
        if p["type"] == "row":
            continue
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
        assert p["targets"] and p["datasource"]["uid"] == "${datasource}"
    by_title = {p["title"]: p for p in panels(dash)}
    wanted = {
        "Curriculum progress": "sailvl_curriculum_step",
        "Training tokens/s": "sailvl_train_tokens_total",
        "Training loss": "sailvl_train_loss",
        "Captions/s": "sailvl_caption_samples_total",
        "Restarts": "sailvl_operator_train_restarts",
        "Eval score vs training tokens (log)": "sailvl_eval_score",
        "Experiment trials by phase": "sailvl_experiment_trials",
        "Experiment best score": "sailvl_experiment_best_score",
    }
    for title, metric in wanted.items():
        assert metric in json.dumps(by_title[title]["targets"]), title
    xy = by_title["Eval score vs training tokens (log)"]
    assert "sailvl_eval_checkpoint_tokens" in json.dumps(xy["targets"])
    log_axes = [
        prop["value"]
        for o in xy["fieldConfig"]["overrides"]
        for prop in o["properties"]
        if prop["id"] == "custom.scaleDistribution"
    ]
    assert log_axes == [{"type": "log", "log": 10}]
    # The ConfigMap carries exactly this JSON under the sidecar label.
    (cm,) = find(render({}), "ConfigMap")
    assert json.loads(cm["data"]["sailvl.json"]) == dash
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
