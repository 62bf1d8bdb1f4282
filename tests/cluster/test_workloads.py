"""Controllers that the operator relies on: the Indexed Job controller and the garbage
collector, with KWOK pods whose fate the test decides."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, wait_for

pytestmark = pytest.mark.cluster

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def indexed_job(
    name: str, namespace: str, completions: int, backoff_limit: int = 6
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": completions,
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "worker", "image": "busybox"}],
                }
            },
        },
    }


def running_pods(kubectl: Kubectl, namespace: str, job: str, count: int) -> list[dict]:
    def check() -> list[dict] | None:
        pods = kubectl.pods(namespace, f"job-name={job}")
        up = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return up if len(up) >= count else None

    return wait_for(check, timeout=90, what=f"{count} running pods of job {job}")


def job_condition(kubectl: Kubectl, namespace: str, name: str, kind: str) -> dict | None:
    job = kubectl.get("job", name, namespace) or {}
    conds = job.get("status", {}).get("conditions", [])
    return next((c for c in conds if c["type"] == kind and c["status"] == "True"), None)


def test_indexed_job_with_4_completions_succeeds(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(indexed_job("idx", namespace, 4))
    pods = running_pods(kubectl, namespace, "idx", 4)
    indexes = sorted(int(p["metadata"]["annotations"][INDEX_ANNOTATION]) for p in pods)
    assert indexes == [0, 1, 2, 3]
    assert all(p["spec"]["nodeName"].startswith("kwok-") for p in pods)
    # Still running: the Job must not count anything yet.
    assert not (kubectl.get("job", "idx", namespace) or {}).get("status", {}).get("succeeded")
    for p in pods:
        kubectl.succeed_pod(p["metadata"]["name"], namespace)
    wait_for(
        lambda: job_condition(kubectl, namespace, "idx", "Complete"),
        timeout=90,
        what="job Complete",
    )
    status = (kubectl.get("job", "idx", namespace) or {})["status"]
    assert status["succeeded"] == 4
    assert status["completedIndexes"] == "0-3"
    assert not status.get("failed")


def test_failed_pod_fails_a_job_without_retries(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(indexed_job("once", namespace, 1, backoff_limit=0))
    (p,) = running_pods(kubectl, namespace, "once", 1)
    kubectl.fail_pod(p["metadata"]["name"], namespace, code=2)
    cond = wait_for(
        lambda: job_condition(kubectl, namespace, "once", "Failed"), timeout=90, what="job Failed"
    )
    assert cond["reason"] == "BackoffLimitExceeded"
    assert (kubectl.get("job", "once", namespace) or {})["status"]["failed"] == 1


def test_deleting_an_owner_deletes_its_children(kubectl: Kubectl, namespace: str) -> None:
    owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owner", "namespace": namespace},
    }
    kubectl.apply(owner)
    uid = (kubectl.get("configmap", "owner", namespace) or {})["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
    children = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"child-{i}", "namespace": namespace, "ownerReferences": [ref]},
        }
        for i in range(3)
    ]
    kubectl.apply(*children)
    # A Job owned by the ConfigMap: GC must cascade owner -> Job -> pods.
    job = indexed_job("owned", namespace, 2)
    job["metadata"]["ownerReferences"] = [ref]
    kubectl.apply(job)
    pods = running_pods(kubectl, namespace, "owned", 2)
    bystander = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "free", "namespace": namespace},
    }
    kubectl.apply(bystander)

    kubectl("delete", "configmap", "owner", "-n", namespace, "--wait=true")

    def gone() -> bool:
        left = [kubectl.get("configmap", f"child-{i}", namespace) for i in range(3)]
        left += [kubectl.get("job", "owned", namespace)]
        left += [kubectl.get("pod", p["metadata"]["name"], namespace) for p in pods]
        return not any(left)

    wait_for(gone, timeout=90, what="children of the deleted owner garbage-collected")
    assert kubectl.get("configmap", "free", namespace) is not None
