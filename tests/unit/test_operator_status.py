"""Pure status logic of the operator: conditions in metav1.Condition's shape, phases
and restart attempts derived from owned Jobs, pod failure diagnosis, secret references
and the API-error split."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sailvl_operator import diagnose as d
from sailvl_operator import status as s

CAMEL = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")  # metav1.Condition.reason
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Suspended")
REASONS = {
    "Pending": "ChildrenCreated",
    "Running": "JobRunning",
    "Succeeded": "JobSucceeded",
    "Failed": "JobFailed",
    "Suspended": "Suspended",
}


def cond_of(conds: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    (found,) = [x for x in conds if x["type"] == type_]
    return found


def walk(*phases: str) -> list[dict[str, Any]]:
    conds: list[dict[str, Any]] = []
    for i, phase in enumerate(phases):
        conds = s.phase_conditions(conds, phase, REASONS[phase], f"m{i}", generation=i + 1)
    return conds


@pytest.mark.parametrize(
    "path",
    [
        ("Pending", "Running", "Succeeded"),
        ("Pending", "Running", "Failed"),
        ("Pending", "Suspended", "Running", "Failed"),
        ("Pending", "Failed"),
    ],
)
def test_conditions_are_metav1_shaped(path: tuple[str, ...]) -> None:
    conds = walk(*path)
    types = [x["type"] for x in conds]
    assert len(types) == len(set(types)), "a list keyed by type"
    for cond in conds:
        assert set(cond) == {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        }
        assert cond["status"] in ("True", "False")
        assert CAMEL.match(cond["reason"]), cond
        assert cond["observedGeneration"] == len(path)
    true = {x["type"] for x in conds if x["status"] == "True"}
    last = path[-1]
    assert last in true or last == "Pending"
    assert not (true & set(PHASES)) - {last}, "only the current phase condition is True"


@pytest.mark.parametrize("reason", ["JobFailed", "InvalidSpec", "MaxRestartsExceeded"])
def test_ready_is_never_true_on_failed(reason: str) -> None:
    conds = s.phase_conditions(walk("Pending", "Running"), "Failed", reason, "x", 3)
    ready = cond_of(conds, "Ready")
    assert ready["status"] == "False" and ready["reason"] == reason
    assert cond_of(walk("Running"), "Ready")["status"] == "True"
    restarting = s.phase_conditions(None, "Running", "PodFailedRestarting", "x", 1)
    assert cond_of(restarting, "Ready")["status"] == "False"


def test_transition_time_kept_when_only_reason_or_message_changes() -> None:
    conds = s.set_condition(None, "Ready", False, "ChildrenCreated", "a", 1, at=T0)
    conds = s.set_condition(conds, "Ready", False, "ImagePullBackOff", "b", 2, at=T1)
    (ready,) = conds
    assert ready["lastTransitionTime"] == T0 and ready["reason"] == "ImagePullBackOff"
    assert ready["observedGeneration"] == 2
    (ready,) = s.set_condition(conds, "Ready", True, "JobRunning", "c", 2, at=T1)
    assert ready["lastTransitionTime"] == T1


@pytest.mark.parametrize("bad", ["", "not camel", "Bad-Reason", "9Lives"])
def test_reason_must_be_camel_case(bad: str) -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        s.set_condition(None, "Ready", True, bad)


def job(attempt: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"ts-{attempt}",
            "labels": {"sailvl.io/restart-attempt": str(attempt)},
        },
        "spec": {},
        "status": status,
    }


FAILED = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]


def test_restart_attempt_comes_from_the_newest_owned_job() -> None:
    jobs = [job(0, conditions=FAILED), job(2, active=2), job(1, conditions=FAILED)]
    newest = s.newest(jobs)
    assert newest is not None and s.attempt_of(newest) == 2
    assert s.newest([]) is None
    assert s.attempt_of({"metadata": {"labels": {"sailvl.io/restart-attempt": "x"}}}) == 0
    # The decision looks at the Job only: attempt 1 of max 1 failed -> fail, not restart.
    assert s.decision_for("TrainStage", job(1, conditions=FAILED), 1).action == "fail"
    assert s.decision_for("TrainStage", job(0, conditions=FAILED), 1).action == "restart"
    assert s.decision_for("EvalSuite", job(0, conditions=FAILED), 3).action == "fail"


def test_job_times() -> None:
    done = job(
        0,
        startTime=T0,
        completionTime=T1,
        conditions=[{"type": "Complete", "status": "True", "lastTransitionTime": T1}],
    )
    out = s.job_outcome(done)
    assert (out.phase, out.start_time, out.completion_time) == ("Succeeded", T0, T1)


def pod(name: str, *, phase: str = "Failed", node: str = "gpu-0", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": node},
        "status": {"phase": phase, **status},
    }


def terminated(code: int, reason: str) -> dict[str, Any]:
    return {"name": "trainer", "state": {"terminated": {"exitCode": code, "reason": reason}}}


def test_pod_problems_name_pod_node_container_code_and_reason() -> None:
    pods = [
        pod("ts-0-1", containerStatuses=[terminated(137, "OOMKilled")]),
        pod("ts-0-0", phase="Running", containerStatuses=[{"name": "trainer", "state": {}}]),
        pod("ts-0-2", reason="Evicted", message="The node was low on memory."),
        pod("ts-0-3", reason="DeadlineExceeded", message="Pod was active too long"),
        pod(
            "ts-0-4",
            phase="Pending",
            containerStatuses=[
                {
                    "name": "trainer",
                    "state": {
                        "waiting": {"reason": "ImagePullBackOff", "message": "no such image"}
                    },
                }
            ],
        ),
    ]
    got = {p.pod: p for p in d.pod_problems(pods)}
    assert set(got) == {"ts-0-1", "ts-0-2", "ts-0-3", "ts-0-4"}
    oom = got["ts-0-1"]
    assert oom.reason == "OOMKilled" and not oom.stuck
    for part in ("ts-0-1", "gpu-0", "trainer", "137", "OOMKilled"):
        assert part in oom.text
    assert got["ts-0-2"].reason == "Evicted" and "low on memory" in got["ts-0-2"].text
    assert got["ts-0-3"].reason == "DeadlineExceeded"
    assert got["ts-0-4"].stuck and "ImagePullBackOff" in got["ts-0-4"].text


def test_secret_refs() -> None:
    spec = {
        "containers": [
            {
                "name": "c",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                    {
                        "name": "B",
                        "valueFrom": {
                            "secretKeyRef": {"name": "opt", "key": "k", "optional": True}
                        },
                    },
                    {"name": "C", "value": "plain"},
                ],
                "envFrom": [{"secretRef": {"name": "s2"}}, {"configMapRef": {"name": "cm"}}],
            }
        ],
        "volumes": [
            {"name": "v", "secret": {"secretName": "s3"}},
            {"name": "p", "projected": {"sources": [{"secret": {"name": "s4"}}]}},
        ],
        "imagePullSecrets": [{"name": "pull"}],
    }
    refs = dict(d.secret_refs(spec))
    assert set(refs) == {"s1", "s2", "s3", "s4"}
    assert refs["s1"] == "containers[c].env[A].secretKeyRef"
    assert refs["s3"] == "volumes[v].secret"


@pytest.mark.parametrize(
    ("code", "message", "permanent"),
    [
        (422, 'Job.batch "x" is invalid: spec.template.spec.containers[0].name: Required', True),
        (400, "bad request", True),
        (403, 'jobs.batch "x" is forbidden: violates PodSecurity "restricted"', True),
        (403, 'jobs.batch "x" is forbidden: exceeded quota: q, requested: pods=1', False),
        (409, "the object has been modified", False),
        (429, "too many requests", False),
        (500, "etcdserver: request timed out", False),
        (503, "unavailable", False),
    ],
)
def test_api_errors_split_into_permanent_and_transient(
    code: int, message: str, permanent: bool
) -> None:
    err = d.classify(code, "Reason", json.dumps({"kind": "Status", "message": message}))
    assert err.permanent is permanent and err.message == message and err.code == code
    assert d.classify(code, "Unprocessable", "not json").message == "Unprocessable"
