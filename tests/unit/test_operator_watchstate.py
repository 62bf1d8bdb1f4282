"""Resource gauges from the watch (sailvl_operator.watchstate): a deleted resource's
per-object series go, also those another module of the operator exported."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sailvl_operator import children, curriculum, watchstate


def test_a_deleted_curriculum_loses_its_series() -> None:
    labels = {"namespace": "ws", "curriculum": "gone"}
    # As curriculum.write exports them after a status write.
    curriculum.METRICS.labels("sailvl_curriculum_steps", **labels).set(8)
    curriculum.METRICS.labels("sailvl_curriculum_step", **labels).set(3)
    body = {"metadata": {"namespace": "ws", "name": "gone"}, "status": {"phase": "Running"}}
    index = watchstate.PhaseIndex()
    watchstate.observe_event(children.METRICS, index, "Curriculum", body, None)
    phase = {"kind": "Curriculum", "namespace": "ws", "name": "gone", "phase": "Running"}
    assert REGISTRY.get_sample_value("sailvl_operator_resource_phase", phase) == 1
    watchstate.observe_event(children.METRICS, index, "Curriculum", body, "DELETED")
    assert REGISTRY.get_sample_value("sailvl_operator_resource_phase", phase) is None
    assert REGISTRY.get_sample_value("sailvl_curriculum_steps", labels) is None
    assert REGISTRY.get_sample_value("sailvl_curriculum_step", labels) is None


def test_a_deleted_curriculum_loses_its_gate_failure_counters() -> None:
    labels = {"namespace": "ws", "curriculum": "gated"}
    other = {"namespace": "ws", "curriculum": "kept", "step": "stage1-eval"}
    for step in ("stage1-eval", "stage2-eval"):  # as curriculum.write exports them
        curriculum.METRICS.labels("sailvl_curriculum_gate_failures_total", **labels, step=step)
    curriculum.METRICS.labels("sailvl_curriculum_gate_failures_total", **other).inc()
    body = {"metadata": {"namespace": "ws", "name": "gated"}, "status": {"phase": "Failed"}}
    index = watchstate.PhaseIndex()
    watchstate.observe_event(children.METRICS, index, "Curriculum", body, None)
    watchstate.observe_event(children.METRICS, index, "Curriculum", body, "DELETED")
    for step in ("stage1-eval", "stage2-eval"):
        sample = {**labels, "step": step}
        assert REGISTRY.get_sample_value("sailvl_curriculum_gate_failures_total", sample) is None
    # Another Curriculum's counter is untouched.
    assert REGISTRY.get_sample_value("sailvl_curriculum_gate_failures_total", other) == 1
