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

from tests.cluster.controlplane.client import Kubectl

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
