"""Status that kubectl users can trust, on the real control plane: metav1 conditions,
the failed pod named, one event per change, the failed attempt kept for its logs,
API server refusals in the status, and ``overall`` over exactly the suite's benchmarks."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.operator_driver import get, job_names, operator, running_pods, wait_phase
from tests.cluster.test_operator import crds, standalone_stage  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
CAMEL = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def events(k: Kubectl, ns: str, name: str) -> list[dict[str, Any]]:
    items = k.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
    return list(items["items"])


def reasons(k: Kubectl, ns: str, name: str) -> list[str]:
    return [e["reason"] for e in events(k, ns, name)]


def conds(k: Kubectl, kind: str, name: str, ns: str) -> dict[str, dict[str, Any]]:
    status = get(k, kind, name, ns).get("status", {})
    out = {c["type"]: c for c in status.get("conditions") or []}
    assert len(out) == len(status.get("conditions") or []), "conditions keyed by type"
    for cond in out.values():
        assert cond["status"] in ("True", "False"), cond
        assert CAMEL.match(cond["reason"]), cond
        assert RFC3339.match(cond["lastTransitionTime"]), cond
        assert isinstance(cond.get("observedGeneration"), int), cond
    if status.get("phase") == "Failed":
        assert out["Ready"]["status"] == "False", out["Ready"]
    return out


def rank(k: Kubectl, ns: str, job: str, index: str) -> dict[str, Any]:
    pods = running_pods(k, ns, job)
    return next(
        p
        for p in pods
        if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == index
    )


def test_group_restart_names_pod_keeps_attempt_and_clears_restarting(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    k, ns = cluster.kubectl, namespace
    with operator(cluster.kubeconfig, ns):
        k.apply(standalone_stage("flaky", ns, maxRestarts=1))
        k.apply(standalone_stage("heal", ns, maxRestarts=1))
        for name in ("flaky", "heal"):
            wait_for(
                lambda n=name: len(running_pods(k, ns, f"{n}-0")) == 2, timeout=60, what="pods"
            )
            wait_phase(k, "trainstage", name, ns)
        time.sleep(2)  # any duplicate event would have been posted by now
        for name in ("flaky", "heal"):
            got = reasons(k, ns, name)
            assert got.count("ChildrenCreated") == 1 and got.count("JobRunning") == 1, got
            assert conds(k, "trainstage", name, ns)["Ready"]["status"] == "True"

        # Rank 1 of attempt 0 is OOM-killed (exit 137) in both stages.
        victims = {n: rank(k, ns, f"{n}-0", "1") for n in ("flaky", "heal")}
        for pod in victims.values():
            k.fail_pod(pod["metadata"]["name"], ns, code=137)
        for name, pod in victims.items():
            wait_for(
                lambda n=name: job_names(k, ns, n) == [f"{n}-0", f"{n}-1"], timeout=60, what="2"
            )
            st = get(k, "trainstage", name, ns)["status"]
            assert st["restarts"] == 1 and st["jobName"] == f"{name}-1"
            # The failed attempt's Job and its failed pod are kept: the logs are there.
            assert k.pod_phase(pod["metadata"]["name"], ns) == "Failed"
            node, pod_name = pod["spec"]["nodeName"], pod["metadata"]["name"]
            warn = [e for e in events(k, ns, name) if e["reason"] == "PodFailedRestarting"]
            assert len(warn) == 1 and warn[0]["type"] == "Warning"
            restarting = conds(k, "trainstage", name, ns)["Restarting"]
            for text in (warn[0]["message"], restarting["message"]):
                assert pod_name in text and node in text and "code 137" in text, text

        # The new attempt runs: Restarting is cleared.
        for name in ("flaky", "heal"):
            wait_for(
                lambda n=name: len(running_pods(k, ns, f"{n}-1")) == 2, timeout=60, what="pods"
            )
            wait_for(
                lambda n=name: conds(k, "trainstage", n, ns)["Restarting"]["status"] == "False",
                timeout=30,
                what="Restarting cleared",
            )
            cond = conds(k, "trainstage", name, ns)
            assert cond["Restarting"]["reason"] == "RestartAttemptRunning"
            assert cond["Ready"]["status"] == "True"

        # heal succeeds: the failed attempt's Job goes with the stage's success.
        for pod in running_pods(k, ns, "heal-1"):
            k.succeed_pod(pod["metadata"]["name"], ns)
        wait_phase(k, "trainstage", "heal", ns, "Succeeded", timeout=60)
        wait_for(
            lambda: job_names(k, ns, "heal") == ["heal-1"], timeout=30, what="attempt 0 deleted"
        )

        # flaky fails again: maxRestarts reached, both attempts kept, the pod named.
        last = rank(k, ns, "flaky-1", "0")
        k.fail_pod(last["metadata"]["name"], ns, code=3)
        wait_phase(k, "trainstage", "flaky", ns, "Failed", timeout=60)
        time.sleep(1)
    st = get(k, "trainstage", "flaky", ns)["status"]
    cond = conds(k, "trainstage", "flaky", ns)
    assert cond["Failed"]["reason"] == "MaxRestartsExceeded"
    assert cond["Restarting"]["status"] == "False" and cond["Ready"]["status"] == "False"
    for text in (st["message"], cond["Failed"]["message"]):
        assert last["metadata"]["name"] in text and "exited with code 3" in text, text
    assert job_names(k, ns, "flaky") == ["flaky-0", "flaky-1"]
    warn = [e for e in events(k, ns, "flaky") if e["reason"] == "MaxRestartsExceeded"]
    assert len(warn) == 1 and last["metadata"]["name"] in warn[0]["message"]
    assert cond["Succeeded"]["status"] == "False" if "Succeeded" in cond else True
    heal = conds(k, "trainstage", "heal", ns)
    assert heal["Succeeded"]["status"] == "True" and heal["Running"]["status"] == "False"


def deny_jobs_policy(ns: str) -> list[dict[str, Any]]:
    """An admission policy of the cluster admin: Jobs of a stage called `denied` are
    refused in this namespace (a 4xx that no retry can fix)."""
    name = f"deny-{ns}"
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["batch"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["jobs"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "object.metadata.?labels[?'sailvl.io/name'].orValue('') "
                        "!= 'denied'",
                        "message": "team policy: no GPU jobs named denied",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
                },
            },
        },
    ]


def test_api_server_refusals_are_in_the_status(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    k, ns = cluster.kubectl, namespace
    policy = deny_jobs_policy(ns)
    k.apply(*policy)
    try:
        # The policy takes effect once the API server's policy cache has it.
        probe = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "probe", "namespace": ns, "labels": {"sailvl.io/name": "denied"}},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "x"}],
                    }
                }
            },
        }
        probe_args = ["create", "-f", "-", "--dry-run=server"]
        wait_for(
            lambda: k(*probe_args, input=json.dumps(probe), check=False).returncode != 0,
            timeout=30,
            what="policy active",
        )
        with operator(cluster.kubeconfig, ns):
            k.apply(standalone_stage("denied", ns))
            k.apply(standalone_stage("nosecret", ns, storageSecret={"name": "no-such-secret"}))
            for name in ("denied", "nosecret"):
                wait_phase(k, "trainstage", name, ns, "Failed")
            time.sleep(2)  # no retry loop: the status and the events stay as they are
        for name, text in (
            ("denied", "team policy: no GPU jobs named denied"),
            ("nosecret", "Secret 'no-such-secret' does not exist"),
        ):
            ready = conds(k, "trainstage", name, ns)["Ready"]
            assert ready["reason"] == "InvalidSpec" and text in ready["message"], ready
            assert text in get(k, "trainstage", name, ns)["status"]["message"]
            assert reasons(k, ns, name).count("InvalidSpec") == 1
        assert job_names(k, ns, "nosecret") == [] and k.pods(ns, "sailvl.io/name=nosecret") == []
        assert "envFrom" in conds(k, "trainstage", "nosecret", ns)["Ready"]["message"] or (
            "secretKeyRef" in conds(k, "trainstage", "nosecret", ns)["Ready"]["message"]
        )
    finally:
        k(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            policy[0]["metadata"]["name"],
            check=False,
        )

    # A transient refusal (the namespace's Job quota is used up) is a retrying condition
    # and a warning event, and the operator creates the Job once the quota allows it.
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "jobs", "namespace": ns},
        "spec": {"hard": {"count/jobs.batch": "0"}},
    }
    k.apply(quota)
    wait_for(
        lambda: (get(k, "resourcequota", "jobs", ns).get("status") or {}).get("hard"),
        timeout=30,
        what="quota status",
    )
    with operator(cluster.kubeconfig, ns):
        k.apply(standalone_stage("queued", ns))
        ready = wait_for(
            lambda: (
                (conds(k, "trainstage", "queued", ns).get("Ready") or {}).get("reason")
                == "ApiServerRetrying"
            ),
            timeout=30,
            what="retrying condition",
        )
        ready = conds(k, "trainstage", "queued", ns)["Ready"]
        assert ready["status"] == "False" and "exceeded quota" in ready["message"], ready
        assert "ApiServerRetrying" in reasons(k, ns, "queued")
        k("delete", "resourcequota", "jobs", "-n", ns)
        wait_for(lambda: job_names(k, ns, "queued") == ["queued-0"], timeout=60, what="Job created")
        wait_for(lambda: len(running_pods(k, ns, "queued-0")) == 2, timeout=60, what="pods")
        wait_for(
            lambda: conds(k, "trainstage", "queued", ns)["Ready"]["status"] == "True",
            timeout=30,
            what="Ready",
        )


def test_overall_averages_exactly_the_suites_benchmarks(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    k, ns = cluster.kubectl, namespace
    suite = {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "EvalSuite",
        "metadata": {"name": "ocr", "namespace": ns},
        "spec": {
            "model": "s3://m/x",
            "modelPreset": "tiny",
            "benchmarks": [{"name": "synth-ocr"}],
            "dataRoot": "s3://bench",
            "output": "s3://o/ocr",
        },
    }
    with operator(cluster.kubeconfig, ns):
        k.apply(suite)
        pods = wait_for(lambda: running_pods(k, ns, "ocr-0"), timeout=60, what="eval pod")
        # The eval job reports one benchmark more than the suite has (it is allowed to
        # patch scores; the operator must not average what was not asked for).
        patch = {"status": {"scores": {"synth-ocr": 50.0, "synth-mcq": 10.0}}}
        k(
            "patch",
            "evalsuite",
            "ocr",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        for pod in pods:
            k.succeed_pod(pod["metadata"]["name"], ns)
        wait_phase(k, "evalsuite", "ocr", ns, "Succeeded", timeout=60)
    st = get(k, "evalsuite", "ocr", ns)["status"]
    assert st["overall"] == pytest.approx(50.0)
    assert set(st["categories"]) == {"ocr_vqa"}
