"""The Experiment operator's pure parts: the status it writes (the decision only on the
terminal write), the best score, and the gauges it exports from the watch and removes
when the Experiment is deleted. The API calls are tested on the control plane
(tests/cluster/test_experiment.py)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from sailvl.api import SpecError, parse_resource
from sailvl.api.flow import ChildState
from sailvl.experiment.trials import decide
from sailvl_operator import experiment as e
from tests.unit.experiment_builders import experiment


def body(status: dict[str, Any] | None = None, name: str = "x") -> dict[str, Any]:
    obj = experiment("quickQuality")
    obj["metadata"].update(name=name, namespace="ns", generation=3, uid="u")
    obj["status"] = status or {}
    return obj


def spec() -> Any:
    return parse_resource(body())[2]


def done(score: float) -> dict[str, ChildState]:
    return {
        "train": ChildState(phase="Succeeded", tokens=1000),
        "train-eval": ChildState(phase="Succeeded", scores={"synth-ocr": score}),
    }


def test_running_status_has_the_table_but_no_decision() -> None:
    exp = spec()
    d = decide(exp, {})
    new = e.status_of(body(), exp, d)
    assert new["phase"] == "Running" and new["strategy"] == "quickQuality"
    assert new["trialsTotal"] == len(new["trials"]) == 6
    assert new["trialsRunning"] == 2 and new["trialsDone"] == 0  # parallelism 2 start now
    assert "decision" not in new and "best" not in new and "completionTime" not in new
    assert {c["type"]: c["status"] for c in new["conditions"]}["Ready"] == "True"
    assert new["observedGeneration"] == 3


def test_terminal_status_carries_the_decision_and_best() -> None:
    exp = spec()
    scores = {"clean": 70.0, "c30": 50.0, "c70": 20.0}
    results = {t: done(v) for c, v in scores.items() for t in (f"{c}-n32", f"{c}-n64")}
    d = decide(exp, results)
    new = e.status_of(body(), exp, d)
    assert new["phase"] == "Succeeded" and new["trialsDone"] == 6
    assert new["best"] == "clean" and new["decision"]["ranking"] == ["clean", "c30", "c70"]
    assert new["completionTime"]
    conds = {c["type"]: c for c in new["conditions"]}
    assert conds["RankAgreement"]["status"] == "True"
    assert e.best_score(new["trials"]) == 70.0


def test_best_score_counts_only_succeeded_trials() -> None:
    rows = [
        {"name": "a", "phase": "Succeeded", "overall": 40.0},
        {"name": "b", "phase": "Failed", "overall": 90.0},
        {"name": "c", "phase": "Running"},
    ]
    assert e.best_score(rows) == 40.0
    assert e.best_score(rows[1:]) is None


def test_gauges_follow_the_watch_and_go_with_the_experiment() -> None:
    labels = {"namespace": "ns", "experiment": "gauged"}
    rows = [
        {"name": "a", "phase": "Succeeded", "overall": 61.5},
        {"name": "b", "phase": "Running"},
        {"name": "c", "phase": "Pending"},
        {"name": "d", "phase": "Skipped"},
    ]
    obj = body({"trials": rows}, name="gauged")
    e.observe_metrics(obj, None)
    get = REGISTRY.get_sample_value
    for phase, n in {"Succeeded": 1, "Running": 1, "Pending": 1, "Skipped": 1, "Failed": 0}.items():
        assert get("sailvl_experiment_trials", {**labels, "phase": phase}) == n, phase
    assert get("sailvl_experiment_best_score", labels) == 61.5
    e.observe_metrics(obj, "DELETED")
    assert get("sailvl_experiment_trials", {**labels, "phase": "Succeeded"}) is None
    assert get("sailvl_experiment_best_score", labels) is None
    e.observe_metrics(obj, "DELETED")  # a second delete (a re-list) is harmless


def test_the_spec_is_validated_once_per_generation() -> None:
    obj = body(name="cached")
    obj["metadata"]["uid"] = "uid-cached"
    first = e.parsed_spec(obj)
    assert e.parsed_spec(obj) is first  # same generation: no second validation
    obj["spec"]["parallelism"] = 5
    assert e.parsed_spec(obj).parallelism == 2  # a spec edit bumps the generation first
    obj["metadata"]["generation"] = 4
    assert e.parsed_spec(obj).parallelism == 5
    bad = body(name="bad")
    bad["metadata"].update(uid="uid-bad", generation=1)
    bad["spec"]["selection"] = {"metric": "mmlu"}
    for _ in range(2):  # refused every time, never cached
        with pytest.raises(SpecError, match="spec.selection.metric"):
            e.parsed_spec(bad)
