"""The control plane itself: version, KWOK nodes, pod lifecycle and pod fate on demand."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, KubectlError, wait_for
from tests.cluster.controlplane.harness import ControlPlane, versions
from tests.cluster.controlplane.nodes import ASCEND_910, NVIDIA_GPU

pytestmark = pytest.mark.cluster


def pod(name: str, **resources: str) -> dict[str, Any]:
    limits = dict(resources)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "resources": {"limits": limits} if limits else {},
                }
            ],
        },
    }


def test_server_reports_the_pinned_version(cluster: ControlPlane, kubectl: Kubectl) -> None:
    info = kubectl.json("version")
    assert info["serverVersion"]["gitVersion"] == versions()["KUBE_VERSION"]
    assert cluster.server.startswith("https://127.0.0.1:")


def test_rbac_is_enforced(kubectl: Kubectl) -> None:
    # An unprivileged identity (impersonated by the admin) is denied by RBAC.
    out = kubectl("auth", "can-i", "list", "pods", "--as=nobody", check=False)
    assert out.stdout.strip() == "no"
    assert kubectl("auth", "can-i", "list", "pods").stdout.strip() == "yes"


def test_kwok_nodes_advertise_accelerators(kubectl: Kubectl) -> None:
    nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes")["items"]}
    gpu = [n for n in nodes.values() if NVIDIA_GPU in n["status"]["allocatable"]]
    ascend = [n for n in nodes.values() if ASCEND_910 in n["status"]["allocatable"]]
    assert len(gpu) >= 2 and len(ascend) >= 2
    assert all(n["status"]["allocatable"][NVIDIA_GPU] == "8" for n in gpu)
    for n in ascend:
        assert n["status"]["allocatable"][ASCEND_910] == "8"
        assert n["metadata"]["labels"]["accelerator"] == "huawei-Ascend910"
        assert n["metadata"]["labels"]["accelerator-type"] == "module-910b-8"
    for n in nodes.values():
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", n["metadata"]["name"]


def test_pod_runs_then_succeeds_on_demand(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply({**pod("ok"), "metadata": {"name": "ok", "namespace": namespace}})
    running = kubectl.wait_pod_phase("ok", namespace, "Running")
    assert running["spec"]["nodeName"].startswith("kwok-")
    # Without the exit annotation the pod keeps running.
    assert kubectl.pod_phase("ok", namespace) == "Running"
    kubectl.succeed_pod("ok", namespace)
    done = kubectl.wait_pod_phase("ok", namespace, "Succeeded")
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"


def test_pod_fails_with_the_requested_exit_code(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply({**pod("bad"), "metadata": {"name": "bad", "namespace": namespace}})
    kubectl.wait_pod_phase("bad", namespace, "Running")
    kubectl.fail_pod("bad", namespace, code=3)
    failed = kubectl.wait_pod_phase("bad", namespace, "Failed")
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


def test_ascend_pod_lands_on_ascend_node_and_oversized_stays_pending(
    kubectl: Kubectl, namespace: str
) -> None:
    fit = pod("npu8", **{ASCEND_910: "8"})
    big = pod("npu16", **{ASCEND_910: "16"})
    gpu = pod("gpu8", **{NVIDIA_GPU: "8"})
    for p in (fit, big, gpu):
        p["metadata"]["namespace"] = namespace
    kubectl.apply(fit, big, gpu)
    placed = kubectl.wait_pod_phase("npu8", namespace, "Running")
    node = kubectl.get("node", placed["spec"]["nodeName"])
    assert node is not None
    assert node["metadata"]["labels"]["accelerator"] == "huawei-Ascend910"
    gpu_node = kubectl.get(
        "node", kubectl.wait_pod_phase("gpu8", namespace, "Running")["spec"]["nodeName"]
    )
    assert gpu_node is not None and NVIDIA_GPU in gpu_node["status"]["allocatable"]

    def unschedulable() -> dict | None:
        p = kubectl.get("pod", "npu16", namespace) or {}
        conds = p.get("status", {}).get("conditions", [])
        return next(
            (c for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"), None
        )

    cond = wait_for(unschedulable, timeout=60, what="npu16 marked unschedulable")
    assert cond["reason"] == "Unschedulable"
    assert f"Insufficient {ASCEND_910}" in cond["message"]
    assert kubectl.pod_phase("npu16", namespace) == "Pending"
    assert "nodeName" not in (kubectl.get("pod", "npu16", namespace) or {})["spec"]


def test_kubectl_error_carries_the_server_message(kubectl: Kubectl) -> None:
    with pytest.raises(KubectlError, match="NotFound|not found"):
        kubectl("get", "pod", "does-not-exist", "-n", "default")
