"""The metric catalogue (sailvl/runtime/metrics.py): naming conventions, lazy import,
exposition through a real prometheus_client registry and HTTP server."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sailvl.runtime import metrics
from sailvl.runtime.metrics import CATALOGUE, Config, Metrics, MetricSpec, serve

REQUIRED = {
    "sailvl_train_step",
    "sailvl_train_loss",
    "sailvl_train_tokens_total",
    "sailvl_train_tokens_per_second",
    "sailvl_train_samples_total",
    "sailvl_train_mfu_ratio",
    "sailvl_train_restarts",
    "sailvl_caption_samples_total",
    "sailvl_caption_shards_total",
    "sailvl_caption_failures_total",
    "sailvl_caption_samples_per_second",
    "sailvl_eval_samples_total",
    "sailvl_eval_score",
    "sailvl_operator_reconciles_total",
    "sailvl_operator_errors_total",
    "sailvl_operator_resources",
    "sailvl_operator_step_duration_seconds",
    "sailvl_curriculum_step",
    "sailvl_curriculum_gate_failures_total",
    "sailvl_experiment_trials",
    "sailvl_experiment_best_score",
}


def test_catalogue_has_the_agreed_names_and_labels() -> None:
    assert set(CATALOGUE) >= REQUIRED
    assert CATALOGUE["sailvl_caption_shards_total"].labels[-1] == "state"
    assert CATALOGUE["sailvl_caption_failures_total"].labels[-1] == "reason"
    assert CATALOGUE["sailvl_eval_score"].labels == ("namespace", "name", "benchmark")
    assert CATALOGUE["sailvl_operator_reconciles_total"].labels == ("kind", "result")
    assert CATALOGUE["sailvl_operator_resources"].labels == ("kind", "phase")
    assert CATALOGUE["sailvl_operator_step_duration_seconds"].kind == "histogram"
    for spec in metrics.family("sailvl_train_") + metrics.family("sailvl_caption_"):
        assert spec.labels[:2] == ("namespace", "name"), spec.name


def test_conventions_hold_for_every_metric() -> None:
    for spec in CATALOGUE.values():
        assert spec.name.endswith("_total") == (spec.kind == "counter")
        if "duration" in spec.name or "timestamp" in spec.name:
            assert spec.name.endswith("_seconds"), spec.name
        if "mfu" in spec.name or "progress" in spec.name:
            assert spec.name.endswith("_ratio"), spec.name


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "train_loss", "kind": "gauge"}, "name"),
        ({"name": "sailvl_Train", "kind": "gauge"}, "name"),
        ({"name": "sailvl_x", "kind": "summary"}, "kind"),
        ({"name": "sailvl_x", "kind": "counter"}, "name"),
        ({"name": "sailvl_x_total", "kind": "gauge"}, "name"),
        ({"name": "sailvl_x_seconds", "kind": "histogram"}, "buckets"),
        ({"name": "sailvl_x", "kind": "gauge", "buckets": (1.0,)}, "buckets"),
        ({"name": "sailvl_x", "kind": "gauge", "help": " "}, "help"),
        ({"name": "sailvl_x", "kind": "gauge", "labels": ("a", "a")}, "labels"),
        ({"name": "sailvl_x", "kind": "gauge", "labels": ("Bad",)}, "labels"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(kwargs: dict, field: str) -> None:
    kwargs = {"help": "h", **kwargs}
    with pytest.raises(ValueError, match=f"^{field}:"):
        MetricSpec(**kwargs)


def test_importing_the_catalogue_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, sailvl, sailvl.runtime.metrics as m; m.series_names(); "
        "bad = [x for x in ('prometheus_client', 'torch', 'kopf', 'boto3') if x in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_metric_exposes_exactly_its_catalogue_series() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry=registry)
    for spec in CATALOGUE.values():
        child = m.labels(spec.name, **{label: "x" for label in spec.labels})
        {"counter": lambda c: c.inc(3), "gauge": lambda c: c.set(2)}.get(
            spec.kind, lambda c: c.observe(0.2)
        )(child)
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    exposed = {s.name for f in families.values() for s in f.samples}
    assert exposed == metrics.series_names()
    for spec in CATALOGUE.values():
        family = families[spec.base]
        assert family.type == spec.kind and family.documentation == spec.help


def test_metrics_refuses_unknown_names_and_wrong_labels() -> None:
    m = Metrics(metrics.family("sailvl_train_"), registry=CollectorRegistry())
    with pytest.raises(KeyError):
        m["sailvl_caption_samples_total"]  # outside this Metrics' part of the catalogue
    with pytest.raises(KeyError):
        m.labels("sailvl_train_los", namespace="a", name="b")
    with pytest.raises(ValueError, match="missing"):
        m.labels("sailvl_train_loss", namespace="a")
    with pytest.raises(ValueError, match="extra"):
        m.labels("sailvl_train_loss", namespace="a", name="b", pod="p")
    assert m["sailvl_train_loss"] is m["sailvl_train_loss"]  # created once


def test_serve_exposes_the_registry_over_http() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry=registry)
    m.labels("sailvl_train_tokens_total", namespace="ml", name="s1").inc(4096)
    server = serve(0, addr="127.0.0.1", registry=registry)
    try:
        assert server.port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read().decode()
        assert 'sailvl_train_tokens_total{name="s1",namespace="ml"} 4096.0' in body
    finally:
        server.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=2)


@pytest.mark.parametrize(("kwargs", "field"), [({"port": 70000}, "port"), ({"addr": ""}, "addr")])
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        Config(**kwargs)
    assert Config().port == metrics.JOB_METRICS_PORT == 9400
    assert metrics.OPERATOR_METRICS_PORT == 9090
