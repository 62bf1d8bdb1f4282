"""DataJob against the real control plane (KWOK nodes; the test decides pod fates).

The operator runs in the test process; the API server, the Job controller and the
scheduler are real, so the Indexed Job's per-index retries (backoffLimitPerIndex), its
podFailurePolicy and the CRD's CEL rules are the real ones.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, KubectlError, wait_for
from tests.cluster.operator_driver import CRDS, get, operator, phase, running_pods

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl.apply(CRDS)
    cluster.kubectl.wait_established("datajobs.sailvl.io")


def score_job(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    body = {
        "task": "score",
        "input": "s3://data/sft",
        "output": f"s3://data/{name}",
        "score": {
            "judge": {
                "endpoint": "http://judge:23333/v1",
                "model": "judge",
                "apiKeySecret": {"name": "judge-key"},
            },  # fmt: skip
            "concurrency": 4,
        },
        "parallelism": 3,
        "backoffLimitPerIndex": 1,
        "storageSecret": {"name": "s3"},
        **spec,
    }
    return {"apiVersion": "sailvl.io/v1alpha1", "kind": "DataJob",
            "metadata": {"name": name, "namespace": ns}, "spec": body}  # fmt: skip


def secrets(k: Kubectl, ns: str) -> None:
    for name, data in (("judge-key", {"apiKey": "k"}),
                       ("s3", {"accessKeyId": "a", "secretAccessKey": "b"})):  # fmt: skip
        k.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": name, "namespace": ns}, "stringData": data})  # fmt: skip


def events(k: Kubectl, ns: str, name: str) -> list[str]:
    items = k.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
    return [e["reason"] for e in items["items"]]


def exit_pods(k: Kubectl, ns: str, name: str, code_of: Any, until: Any, timeout: float = 90):
    """Make every running pod of `name` exit with code_of(index) until `until()`."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"{name}: no outcome in {timeout} s"
        for pod in running_pods(k, ns, owner=name):
            meta = pod["metadata"]
            if "sailvl.io/kwok-exit" in (meta.get("annotations") or {}):
                continue
            index = int(meta["annotations"]["batch.kubernetes.io/job-completion-index"])
            k.set_pod_exit(meta["name"], ns, code_of(index))
        time.sleep(0.5)


def test_score_datajob_runs_indexed_pods_to_success(
    cluster: Any, crds: None, namespace: str
) -> None:
    k = cluster.kubectl
    secrets(k, namespace)
    with operator(cluster.kubeconfig, namespace):
        k.apply(score_job("scored", namespace))
        wait_for(lambda: len(running_pods(k, namespace, owner="scored")) == 3, timeout=60,
                 what="3 running pods")  # fmt: skip
        job = k.get("job", "scored-0", namespace) or {}
        js = job["spec"]
        assert (js["completions"], js["parallelism"], js["backoffLimitPerIndex"]) == (3, 3, 1)
        ctr = js["template"]["spec"]["containers"][0]
        assert ctr["args"] == ["data", "job", "--config", "/etc/sailvl/job.yaml"]
        env = {e["name"]: e for e in ctr["env"]}
        assert env["SAILVL_JUDGE_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "judge-key"
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3"
        assert "resources" not in ctr or not ctr["resources"].get("limits")
        cfg = (k.get("configmap", "scored-config", namespace) or {})["data"]["job.yaml"]
        assert "kind: DataJob" in cfg and "task: score" in cfg
        assert phase(k, "datajob", "scored", namespace) == "Running"
        exit_pods(k, namespace, "scored", lambda i: 0,
                  lambda: phase(k, "datajob", "scored", namespace) == "Succeeded")  # fmt: skip
        time.sleep(1)
    st = get(k, "datajob", "scored", namespace)["status"]
    assert (st["shardsTotal"], st["shardsDone"], st["shardsFailed"]) == (3, 3, 0)
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and st.get("completionTime")
    reasons = events(k, namespace, "scored")
    assert reasons.count("ChildrenCreated") == 1 and "JobSucceeded" in reasons


def test_failed_index_is_retried_then_fails_the_datajob(
    cluster: Any, crds: None, namespace: str
) -> None:
    """Index 1 fails twice (backoffLimitPerIndex 1: one retry): the others still
    succeed, the DataJob is Failed with shardsDone 2, shardsFailed 1."""
    k = cluster.kubectl
    secrets(k, namespace)
    with operator(cluster.kubeconfig, namespace):
        k.apply(score_job("flaky", namespace))
        exit_pods(k, namespace, "flaky", lambda i: 1 if i == 1 else 0,
                  lambda: phase(k, "datajob", "flaky", namespace) == "Failed")  # fmt: skip
        time.sleep(1)
    st = get(k, "datajob", "flaky", namespace)["status"]
    assert (st["shardsDone"], st["shardsFailed"]) == (2, 1)
    pods = k.pods(namespace, "batch.kubernetes.io/job-name=flaky-0")
    idx1 = [p for p in pods
            if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"]  # fmt: skip
    assert len(idx1) == 2  # the first try and its one retry
    assert "JobFailed" in events(k, namespace, "flaky")


def test_invalid_input_exit_fails_at_once(cluster: Any, crds: None, namespace: str) -> None:
    """Exit 2 (invalid input, e.g. an output holding another run) fails the Job at once
    through its podFailurePolicy: no per-index retry."""
    k = cluster.kubectl
    secrets(k, namespace)
    with operator(cluster.kubeconfig, namespace):
        k.apply(score_job("badinput", namespace, parallelism=1, backoffLimitPerIndex=5))
        exit_pods(k, namespace, "badinput", lambda i: 2,
                  lambda: phase(k, "datajob", "badinput", namespace) == "Failed")  # fmt: skip
    st = get(k, "datajob", "badinput", namespace)["status"]
    failed = next(c for c in st["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "ConfigError"
    assert len(k.pods(namespace, "batch.kubernetes.io/job-name=badinput-0")) == 1


def test_invalid_datajobs_never_start_a_pod(cluster: Any, crds: None, namespace: str) -> None:
    k = cluster.kubectl
    # What the schema can say, the API server refuses (CEL rules of the CRD).
    bad = score_job("multi-filter", namespace, task="filter", score=None,
                    filter={"min": {"relevance": 3}}, parallelism=2)  # fmt: skip
    del bad["spec"]["score"]
    with pytest.raises(KubectlError) as err:
        k.apply(bad)
    assert "task filter needs filter and parallelism 1" in err.value.stderr
    noscore = copy.deepcopy(score_job("noscore", namespace))
    del noscore["spec"]["score"]
    with pytest.raises(KubectlError) as err:
        k.apply(noscore)
    assert "task score needs score.judge" in err.value.stderr
    # The rest is the operator's: InvalidSpec naming the field / the missing Secret.
    gpu = score_job("gpu", namespace, resources={"limits": {"nvidia.com/gpu": 1}})
    nosecret = score_job("nosecret", namespace)
    with operator(cluster.kubeconfig, namespace):
        k.apply(gpu)
        k.apply(nosecret)
        for name, needle in (("gpu", "spec.resources.limits[nvidia.com/gpu]"),
                             ("nosecret", "Secret 'judge-key' does not exist")):  # fmt: skip
            st = wait_for(
                lambda n=name: get(k, "datajob", n, namespace).get("status", {}).get("conditions"),
                timeout=30,
                what=f"{name} InvalidSpec",
            )
            ready = next(c for c in st if c["type"] == "Ready")
            assert ready["reason"] == "InvalidSpec" and needle in ready["message"], ready
        time.sleep(2)  # no retries, no crash loop
    assert k.json("get", "jobs,pods", "-n", namespace)["items"] == []
    assert events(k, namespace, "gpu").count("InvalidSpec") == 1


def test_import_datajob_gets_no_judge_key(cluster: Any, crds: None, namespace: str) -> None:
    """task: import over 2 indexes: the same Job shape, storage keys only (no judge key)."""
    k = cluster.kubectl
    secrets(k, namespace)
    job = score_job("imp", namespace, task="import", parallelism=2,
                    **{"import": {"format": "llava", "imageRoot": "s3://data/raw/images"}})  # fmt: skip
    del job["spec"]["score"]
    with operator(cluster.kubeconfig, namespace):
        k.apply(job)
        wait_for(lambda: len(running_pods(k, namespace, owner="imp")) == 2, timeout=60,
                 what="2 running pods")  # fmt: skip
        ctr = (k.get("job", "imp-0", namespace) or {})["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in ctr["env"]}
        assert "AWS_ACCESS_KEY_ID" in names and "SAILVL_JUDGE_API_KEY" not in names
        cfg = (k.get("configmap", "imp-config", namespace) or {})["data"]["job.yaml"]
        assert "task: import" in cfg and "imageRoot: s3://data/raw/images" in cfg
        exit_pods(k, namespace, "imp", lambda i: 0,
                  lambda: phase(k, "datajob", "imp", namespace) == "Succeeded")  # fmt: skip
        time.sleep(1)
    st = get(k, "datajob", "imp", namespace)["status"]
    assert (st["shardsTotal"], st["shardsDone"], st["shardsFailed"]) == (2, 2, 0)
