"""The operator against the real control plane (KWOK nodes; the test decides pod fates)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import yaml

from sailvl.api.kinds import KINDS
from tests.cluster.controlplane.client import Kubectl, KubectlError, wait_for
from tests.cluster.operator_driver import CRDS, drive, get, operator, phase, wait_running_pods

pytestmark = pytest.mark.cluster

STAGES = [
    "pretrain-alignment",
    "pretrain-advance",
    "sft-knowledge",
    "sft-instruction",
    "sft-preference",
]


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    """Every kind's CRD from crds/, established (the Experiment tests import this too)."""
    cluster.kubectl.apply(CRDS)
    cluster.kubectl.wait_established(*(f"{i.plural}.sailvl.io" for i in KINDS.values()))


def small_curriculum(
    name: str, ns: str, *, threshold: float = 10.0, max_restarts: int = 1
) -> dict[str, Any]:
    stages = []
    for i, preset in enumerate(STAGES):
        st: dict[str, Any] = {
            "name": preset.replace("pretrain-", "pt-"),
            "preset": preset,
            "data": [{"fromStep": "caption"}] if i < 2 else [{"uri": f"s3://data/{preset}"}],
            "budget": {"steps": 4},
            "globalBatch": 16,
        }
        if i == 0:
            st["eval"] = {"benchmarks": [{"name": "synth-ocr"}]}
            st["gate"] = {"metric": "synth-ocr", "threshold": threshold}
        stages.append(st)
    return {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "Curriculum",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "storage": {"uri": f"s3://runs/{name}"},
            "model": {"preset": "tiny"},
            "defaults": {
                "accelerator": "nvidia",
                "nodes": 2,
                "devicesPerNode": 2,
                "maxRestarts": max_restarts,
            },
            "caption": {
                "input": "s3://data/raw",
                "output": f"s3://runs/{name}/captions",
                "model": {"uri": "s3://models/captioner"},
                "parallelism": 2,
            },
            "stages": stages,
            "evalDataRoot": "s3://bench",
            "finalEval": {"suite": "synthetic"},
        },
    }


def standalone_stage(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    """A TrainStage outside any curriculum: two 2-GPU nodes, tiny model."""
    return {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "TrainStage",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "preset": "sft-knowledge",
            "model": {"preset": "tiny"},
            "data": [{"uri": "s3://d/x"}],
            "budget": {"steps": 5},
            "output": f"s3://o/{name}",
            "nodes": 2,
            "devicesPerNode": 2,
            **spec,
        },
    }


def children(kubectl: Kubectl, ns: str, cur: str) -> dict[str, list[str]]:
    out = {}
    for kind in ("captionjobs", "trainstages", "evalsuites"):
        items = kubectl.json("get", kind, "-n", ns, "-l", f"sailvl.io/curriculum={cur}")["items"]
        out[kind] = sorted(i["metadata"]["name"] for i in items)
    return out


def test_curriculum_runs_to_success_and_chains_checkpoints(
    cluster: Any, crds: None, namespace: str
) -> None:
    k = cluster.kubectl
    k.apply(small_curriculum("demo", namespace))
    with operator(cluster.kubeconfig, namespace):
        drive(
            k,
            namespace,
            lambda: phase(k, "curriculum", "demo", namespace) in ("Succeeded", "Failed"),
            scores={"synth-ocr": 55.0, "synth-mcq": 40.0, "synth-yesno": 70.0},
        )
    cur = get(k, "curriculum", "demo", namespace)
    assert cur["status"]["phase"] == "Succeeded", cur["status"]
    assert cur["status"]["stepsDone"] == cur["status"]["stepsTotal"] == 8
    assert [s["phase"] for s in cur["status"]["steps"]] == ["Succeeded"] * 8
    names = [s.replace("pretrain-", "pt-") for s in STAGES]
    prev = None
    for stage in names:
        cm = get(k, "configmap", f"demo-{stage}-config", namespace)
        cfg = yaml.safe_load(cm["data"]["job.yaml"])
        if prev is None:
            assert cfg["spec"]["data"][0]["uri"] == "s3://runs/demo/captions"
        else:
            assert cfg["spec"]["model"]["init"] == f"s3://runs/demo/{prev}/final"
        prev = stage
    final = get(k, "evalsuite", "demo-final-eval", namespace)
    assert final["spec"]["model"] == "s3://runs/demo/sft-preference/final"
    assert final["status"]["overall"] == pytest.approx((55 + 40 + 70) / 3)
    events = k.json(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=demo"
    )["items"]
    assert {"StepStarted", "Completed"} <= {e["reason"] for e in events}


def test_gate_failure_fails_curriculum(cluster: Any, crds: None, namespace: str) -> None:
    k = cluster.kubectl
    k.apply(small_curriculum("gated", namespace, threshold=60.0))
    with operator(cluster.kubeconfig, namespace):
        drive(
            k,
            namespace,
            lambda: phase(k, "curriculum", "gated", namespace) in ("Succeeded", "Failed"),
            scores={"synth-ocr": 42.5},
        )
    st = get(k, "curriculum", "gated", namespace)["status"]
    assert st["phase"] == "Failed"
    failed = next(c for c in st["conditions"] if c["type"] == "Failed")
    assert (
        failed["reason"] == "GateFailed"
        and "42.5" in failed["message"]
        and "60" in failed["message"]
    )
    assert children(k, namespace, "gated")["trainstages"] == ["gated-pt-alignment"]


def test_failed_pod_restarts_group_then_fails(cluster: Any, crds: None, namespace: str) -> None:
    k = cluster.kubectl
    k.apply(small_curriculum("flaky", namespace, max_restarts=1))

    def fate(pod: dict[str, Any]) -> int:
        # Rank 1 of the first stage fails on every attempt; everything else succeeds.
        labels = pod["metadata"]["labels"]
        idx = pod["metadata"]["annotations"].get("batch.kubernetes.io/job-completion-index")
        return 1 if labels.get("sailvl.io/name") == "flaky-pt-alignment" and idx == "1" else 0

    with operator(cluster.kubeconfig, namespace):
        drive(
            k,
            namespace,
            lambda: phase(k, "curriculum", "flaky", namespace) in ("Succeeded", "Failed"),
            exit_code=fate,
        )
    ts = get(k, "trainstage", "flaky-pt-alignment", namespace)["status"]
    assert ts["phase"] == "Failed" and ts["restarts"] == 1
    assert {c["type"]: c["reason"] for c in ts["conditions"]}["Failed"] == "MaxRestartsExceeded"
    jobs = k.json("get", "jobs", "-n", namespace, "-l", "sailvl.io/name=flaky-pt-alignment")[
        "items"
    ]
    job = next(j for j in jobs if j["metadata"]["name"] == "flaky-pt-alignment-1")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SAILVL_RESTART_ATTEMPT"] == "1"
    cur = get(k, "curriculum", "flaky", namespace)["status"]
    assert cur["phase"] == "Failed"
    assert {c["type"]: c["reason"] for c in cur["conditions"]}["Failed"] == "ChildFailed"


def test_operator_restart_mid_curriculum_no_duplicates(
    cluster: Any, crds: None, namespace: str
) -> None:
    k = cluster.kubectl
    k.apply(small_curriculum("resume", namespace))
    scores = {"synth-ocr": 55.0, "synth-mcq": 40.0, "synth-yesno": 70.0}
    with operator(cluster.kubeconfig, namespace):
        drive(
            k,
            namespace,
            lambda: (
                (get(k, "curriculum", "resume", namespace).get("status", {}).get("stepsDone") or 0)
                >= 3
            ),
            scores=scores,
        )
    # The operator is down; the running child's pods finish meanwhile.
    time.sleep(1)
    drive(k, namespace, lambda: False, scores=scores, passes=1)
    with operator(cluster.kubeconfig, namespace):
        drive(
            k,
            namespace,
            lambda: phase(k, "curriculum", "resume", namespace) in ("Succeeded", "Failed"),
            scores=scores,
        )
    assert phase(k, "curriculum", "resume", namespace) == "Succeeded"
    kids = children(k, namespace, "resume")
    assert (
        len(kids["trainstages"]) == 5
        and len(kids["captionjobs"]) == 1
        and len(kids["evalsuites"]) == 2
    )
    jobs = k.json("get", "jobs", "-n", namespace)["items"]
    names = [j["metadata"]["name"] for j in jobs]
    assert len(names) == len(set(names)) == 8


def test_invalid_specs(cluster: Any, crds: None, namespace: str) -> None:
    k = cluster.kubectl
    bad = {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "TrainStage",
        "metadata": {"name": "toobig", "namespace": namespace},
        "spec": {
            "preset": "sft-knowledge",
            "model": {"preset": "2b"},
            "data": [{"uri": "s3://d/x"}],
            "budget": {"steps": 5},
            "maxTiles": 40,
            "output": "s3://o/x",
        },
    }
    with operator(cluster.kubeconfig, namespace):
        k.apply(bad)
        st = wait_for(
            lambda: get(k, "trainstage", "toobig", namespace).get("status", {}).get("conditions"),
            timeout=30,
            what="InvalidSpec condition",
        )
        time.sleep(2)  # no crash loop, no retries: the status stays as it is
    ready = next(c for c in st if c["type"] == "Ready")
    assert (
        ready["status"] == "False"
        and ready["reason"] == "InvalidSpec"
        and "maxTiles" in ready["message"]
    )
    assert (
        k.json("get", "jobs,configmaps,services", "-n", namespace, "-l", "sailvl.io/name=toobig")[
            "items"
        ]
        == []
    )
    events = k.json(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=toobig"
    )["items"]
    assert [e["reason"] for e in events].count("InvalidSpec") == 1
    schema_bad = copy.deepcopy(bad)
    schema_bad["metadata"]["name"] = "schemabad"
    schema_bad["spec"]["budget"] = {"steps": 0}
    with pytest.raises(KubectlError) as err:
        k.apply(schema_bad)
    assert "spec.budget.steps" in err.value.stderr


def test_suspend_resume_and_delete(cluster: Any, crds: None, namespace: str) -> None:
    k = cluster.kubectl
    # No queue: spec.suspend maps to the Job's own suspend (a queued Job's suspend is
    # Kueue's: tests/cluster/test_kueue.py runs that against the real Kueue).
    stage = standalone_stage("sus", namespace, suspend=True)
    with operator(cluster.kubeconfig, namespace):
        k.apply(stage)
        wait_for(
            lambda: phase(k, "trainstage", "sus", namespace) == "Suspended",
            timeout=30,
            what="Suspended",
        )
        assert k.pods(namespace, "sailvl.io/name=sus") == []
        assert get(k, "job", "sus-0", namespace)["spec"]["suspend"] is True
        k(
            "patch",
            "trainstage",
            "sus",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec": {"suspend": false}}',
        )
        wait_running_pods(k, namespace, "sus", count=2)
        wait_for(
            lambda: phase(k, "trainstage", "sus", namespace) == "Running",
            timeout=30,
            what="Running",
        )
    # Deleting a Curriculum deletes its children (owner references + garbage collector).
    k.apply(small_curriculum("gone", namespace))
    with operator(cluster.kubeconfig, namespace):
        wait_for(
            lambda: children(k, namespace, "gone")["captionjobs"], timeout=30, what="first child"
        )
    k("delete", "curriculum", "gone", "-n", namespace, "--wait=false")
    wait_for(
        lambda: not children(k, namespace, "gone")["captionjobs"],
        timeout=60,
        what="children garbage-collected",
    )


def test_config_error_exit_fails_stage_without_restart(
    cluster: Any, crds: None, namespace: str
) -> None:
    """A stage pod that exits 2 (the job's config-error code) fails the stage at once,
    keeping the message the job reported; no group restart, no crash loop."""
    k = cluster.kubectl
    stage = standalone_stage("badcfg", namespace, maxRestarts=3)
    with operator(cluster.kubeconfig, namespace):
        k.apply(stage)
        pods = wait_running_pods(k, namespace, "badcfg")
        # What `sailvl train` reports before it exits 2 (sailvl.runtime.report).
        k(
            "patch",
            "trainstage",
            "badcfg",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status": {"message": "data[0]: cannot read s3://d/x"}}',
        )
        k.fail_pod(pods[0]["metadata"]["name"], namespace, code=2)
        wait_for(
            lambda: phase(k, "trainstage", "badcfg", namespace) == "Failed",
            timeout=60,
            what="stage Failed",
        )
        time.sleep(2)
    st = get(k, "trainstage", "badcfg", namespace)["status"]
    failed = next(c for c in st["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "ConfigError" and "cannot read s3://d/x" in failed["message"]
    assert st["restarts"] == 0
    assert [j["metadata"]["name"] for j in k.json("get", "jobs", "-n", namespace)["items"]] == [
        "badcfg-0"
    ]
