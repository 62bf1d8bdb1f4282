"""The Curriculum state machine: order, chaining, gates, failures."""

from __future__ import annotations

from sailvl.api import parse_resource
from sailvl.api.flow import ChildState, child_spec, decide, step_rows

from .api_builders import curriculum, mutate

OK = "Succeeded"


def _cur(obj=None):  # type: ignore[no-untyped-def]
    return parse_resource(obj or curriculum())[2]


def _run_all(cur, scores):  # type: ignore[no-untyped-def]
    children: dict[str, ChildState] = {}
    order = []
    for _ in range(20):
        d = decide(cur, children)
        if d.action != "create":
            return d, order, children
        order.append(d.step.name)
        children[d.step.name] = ChildState(phase=OK, scores=scores.get(d.step.name, {}), tokens=100)
    raise AssertionError("did not finish")


def test_runs_every_step_in_order() -> None:
    d, order, children = _run_all(_cur(), {"align-eval": {"synth-ocr": 50.0}})
    assert d.action == "succeed"
    assert order == ["caption", "align", "align-eval", "sft", "final-eval"]
    rows = step_rows("demo", _cur(), children)
    assert rows[1]["checkpoint"] == "file:///runs/demo/align/final"
    assert [r["child"] for r in rows][0] == "demo-caption"


def test_waits_on_running_child() -> None:
    d = decide(_cur(), {"caption": ChildState(phase="Running")})
    assert d.action == "wait" and d.step.name == "caption"


def test_child_failure_fails_curriculum() -> None:
    d = decide(_cur(), {"caption": ChildState(phase="Failed", message="3 shards failed")})
    assert d.action == "fail" and d.reason == "ChildFailed" and "3 shards failed" in d.message


def test_gate_below_threshold_fails_with_score_and_threshold() -> None:
    obj = mutate(curriculum(), "spec.stages.0.gate.threshold", 60.0)
    d, order, _ = _run_all(_cur(obj), {"align-eval": {"synth-ocr": 42.5}})
    assert d.action == "fail" and d.reason == "GateFailed"
    assert "42.5" in d.message and "60" in d.message
    assert order[-1] == "align-eval"


def test_gate_on_missing_metric_fails() -> None:
    d, _, _ = _run_all(_cur(), {})
    assert d.action == "fail" and "not reported" in d.message


def test_gate_on_aggregate() -> None:
    obj = mutate(curriculum(), "spec.stages.0.gate", {"metric": "overall", "threshold": 10})
    d, _, _ = _run_all(_cur(obj), {"align-eval": {"synth-ocr": 30.0}})
    assert d.action == "succeed"


def test_eval_spec_gets_tokens_and_checkpoint() -> None:
    cur = _cur()
    children = {"caption": ChildState(phase=OK), "align": ChildState(phase=OK, tokens=1234)}
    d = decide(cur, children)
    spec = child_spec(cur, d.step, children)
    assert spec.model == "file:///runs/demo/align/final" and spec.tokens == 1234


def test_edits_to_unstarted_steps_take_effect() -> None:
    cur = _cur(mutate(curriculum(), "spec.stages.1.budget", {"samples": 999}))
    children = {
        n: ChildState(phase=OK, scores={"synth-ocr": 1.0})
        for n in ("caption", "align", "align-eval")
    }
    d = decide(cur, children)
    assert d.step.name == "sft" and child_spec(cur, d.step, children).budget.samples == 999
