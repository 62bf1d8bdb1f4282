"""Runs the operator in the test process (kopf.testing.KopfRunner) against the test
control plane, and plays the part of the job pods: it reports eval scores the way an
eval pod does (a merge patch of the EvalSuite status) and makes KWOK pods exit."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kopf.testing import KopfRunner

from tests.cluster.controlplane.client import Kubectl, wait_for

CRDS = Path(__file__).parents[2] / "crds"


@contextlib.contextmanager
def operator(kubeconfig: Path, namespace: str) -> Iterator[KopfRunner]:
    """The operator, watching one namespace, until the block ends."""
    os.environ["KUBECONFIG"] = str(kubeconfig)
    os.environ["SAILVL_METRICS_PORT"] = "0"
    from sailvl_operator import k8s

    k8s.reset()
    args = ["run", "--standalone", "--namespace", namespace, "-m", "sailvl_operator.main"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    # A handler error shows up here rather than as a hang.
    assert runner.exception is None or isinstance(runner.exception, SystemExit), runner.exception


def get(kubectl: Kubectl, kind: str, name: str, ns: str) -> dict[str, Any]:
    return kubectl.get(kind, name, ns) or {}


def phase(kubectl: Kubectl, kind: str, name: str, ns: str) -> str | None:
    return get(kubectl, kind, name, ns).get("status", {}).get("phase")


def running_pods(
    kubectl: Kubectl, ns: str, job: str | None = None, *, owner: str | None = None
) -> list[dict[str, Any]]:
    """The Running pods of one Job (`job`, by the Job controller's job-name label) or of
    every Job of one sailvl resource (`owner`, by the operator's `sailvl.io/name`)."""
    if (job is None) == (owner is None):
        raise ValueError("running_pods: give exactly one of job, owner")
    label = f"batch.kubernetes.io/job-name={job}" if job is not None else f"sailvl.io/name={owner}"
    return [p for p in kubectl.pods(ns, label) if (p.get("status") or {}).get("phase") == "Running"]


def wait_running_pods(
    kubectl: Kubectl, ns: str, owner: str, count: int = 0, timeout: float = 60
) -> list[dict[str, Any]]:
    """Wait until `owner`'s resource has Running pods (exactly `count` of them when
    `count` is given) and return them."""

    def ready() -> list[dict[str, Any]] | None:
        pods = running_pods(kubectl, ns, owner=owner)
        return pods if pods and (not count or len(pods) == count) else None

    found: list[dict[str, Any]] = wait_for(ready, timeout=timeout, what=f"running pods of {owner}")
    return found


def job_names(kubectl: Kubectl, ns: str, owner: str) -> list[str]:
    """The sorted names of the Jobs the operator made for `owner` (`<owner>-<attempt>`)."""
    items = kubectl.json("get", "jobs", "-n", ns, "-l", f"sailvl.io/name={owner}")["items"]
    return sorted(j["metadata"]["name"] for j in items)


def wait_phase(
    kubectl: Kubectl, kind: str, name: str, ns: str, want: str = "Running", timeout: float = 30
) -> None:
    """Wait until the resource's `status.phase` is `want`."""
    wait_for(lambda: phase(kubectl, kind, name, ns) == want, timeout=timeout, what=f"{name} {want}")


def drive(
    kubectl: Kubectl,
    ns: str,
    done: Callable[[], bool],
    *,
    scores: dict[str, float] | None = None,
    exit_code: Callable[[dict[str, Any]], int | None] = lambda pod: 0,
    timeout: float = 240,
    passes: int | None = None,
) -> None:
    """Until ``done()``: report ``scores`` for every EvalSuite that has a running pod,
    then make each running, undecided pod exit with ``exit_code(pod)`` (None: leave it)."""
    deadline = time.monotonic() + timeout
    while not done():
        if passes is not None:
            if passes == 0:
                return
            passes -= 1
        if time.monotonic() > deadline:
            raise TimeoutError("curriculum did not finish in time")
        for pod in kubectl.pods(ns, "app.kubernetes.io/part-of=sailvl"):
            meta = pod["metadata"]
            if pod.get("status", {}).get("phase") != "Running":
                continue
            if "sailvl.io/kwok-exit" in (meta.get("annotations") or {}):
                continue
            labels = meta.get("labels", {})
            if labels.get("sailvl.io/kind") == "EvalSuite" and scores is not None:
                kubectl(
                    "patch",
                    "evalsuite",
                    labels["sailvl.io/name"],
                    "-n",
                    ns,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    _json({"status": {"scores": scores}}),
                )
            code = exit_code(pod)
            if code is not None:
                kubectl.set_pod_exit(meta["name"], ns, code)
        time.sleep(0.5)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj)
