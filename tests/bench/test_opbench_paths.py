"""The operator bench's hand-over path from an audit log (tests/bench/opbench_stats.py):
which requests count, from which moment, and what is left out."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.opbench_stats import handover_paths


def _ev(
    t: float, dt: float, agent: str, user: str, verb: str, ref: dict[str, str], uri: str
) -> str:
    stamp = lambda x: f"2026-11-30T16:00:{x:09.6f}Z"  # noqa: E731
    return json.dumps(
        {
            "verb": verb,
            "userAgent": agent,
            "user": {"username": user},
            "objectRef": ref,
            "requestURI": uri,
            "requestReceivedTimestamp": stamp(t),
            "stageTimestamp": stamp(t + dt),
        }
    )


def test_a_handover_path_counts_the_operators_requests_about_its_curriculum(
    tmp_path: Path,
) -> None:
    jc, op = "system:serviceaccount:kube-system:job-controller", "admin"
    gen = "OpenAPI-Generator/37.0.1/python"
    ns = "/apis/sailvl.io/v1alpha1/namespaces/b"
    lines = [
        _ev(1.0, 0.1, "kcm", jc, "update", {"resource": "jobs", "subresource": "status", "name": "c001-caption"}, ""),
        _ev(2.0, 0.2, "kcm", jc, "update", {"resource": "jobs", "subresource": "status", "name": "c001-caption"}, ""),
        _ev(2.5, 0.3, gen, op, "get", {"resource": "curricula", "name": "c001"}, f"{ns}/curricula/c001"),
        _ev(2.6, 0.1, gen, op, "get", {"resource": "curricula", "name": "c002"}, f"{ns}/curricula/c002"),
        _ev(3.0, 0.5, gen, op, "list", {"resource": "jobs"}, "/apis/batch/v1/namespaces/b/jobs?labelSelector=sailvl.io%2Fname%3Dc001-caption"),
        _ev(4.0, 0.2, gen, op, "create", {"resource": "trainstages", "name": "c001-s0"}, f"{ns}/trainstages"),
        _ev(5.0, 0.2, gen, op, "patch", {"resource": "curricula", "name": "c001", "subresource": "status"}, ""),
        _ev(6.0, 0.1, "kcm", jc, "update", {"resource": "jobs", "subresource": "status", "name": "c001-s0-0"}, ""),
        _ev(6.2, 0.1, "kcm", jc, "update", {"resource": "jobs", "subresource": "status", "name": "c001-s0-eval"}, ""),
    ]  # fmt: skip
    log = tmp_path / "audit.log"
    log.write_text("\n".join(lines) + "\n")
    (path,) = handover_paths(log, ["caption", "s0", "s0-eval"])  # s0 -> s0-eval: no create
    # From the Job's last status write (2.2), c001's get, list and create; not c002's
    # get, not the status patch after the create.
    assert path.calls == 3
    assert abs(path.server_s - (0.3 + 0.5 + 0.2)) < 1e-6
    assert abs(path.wait_s - 0.3) < 1e-6
