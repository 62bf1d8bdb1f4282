"""TrainStages under the real Kueue: quota for one stage, two stages, an operator restart.

Kueue's controller is built from sigs.k8s.io/kueue (tests/cluster/controlplane/
build-kueue.sh) and runs against the test control plane with its CRDs and webhooks
(tests/cluster/controlplane/kueue.py). The ClusterQueue has GPU quota for exactly one
stage (2 pods x 2 GPUs); the KWOK nodes have room for both, so only Kueue stands between
the second stage and its pods. What must hold:

- the first stage is admitted and runs; the second stays queued (Job suspended, no pods,
  phase Pending / reason Queued with Kueue's message, QuotaReserved False);
- the operator restarts meanwhile and unsuspends nothing (before the fix, kopf's resume
  handler re-applied ``spec.suspend: false`` to the queued Job and its pods started);
- when the first stage finishes, Kueue admits the second, which then runs and finishes;
- ``spec.suspend`` edges reach Kueue: suspending a running queued stage deactivates its
  Workload (Kueue suspends the Job, the pods go), resuming requeues it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.controlplane.kueue import Kueue
from tests.cluster.operator_driver import CRDS, get, operator, phase
from tests.cluster.test_operator import standalone_stage

pytestmark = pytest.mark.cluster

GPUS_PER_STAGE = 4  # 2 nodes x 2 devices


@pytest.fixture(scope="module")
def kueue(cluster: Any) -> Iterator[Kueue]:
    kq = Kueue(cluster)
    if kq.missing():
        pytest.fail(
            f"Kueue controller missing at {kq.binary}: run "
            "`bash tests/cluster/controlplane/build-kueue.sh` (make tools does)",
            pytrace=False,
        )
    cluster.kubectl.apply(CRDS)
    cluster.kubectl.wait_established(
        *(f"{n}.sailvl.io" for n in ("captionjobs", "trainstages", "evalsuites", "curricula"))
    )
    kq.start()
    try:
        yield kq
    finally:
        # Without its server, Kueue's Job webhook (failurePolicy Fail) would refuse every
        # Job the later tests create: unregister the webhooks first.
        kq.uninstall_webhooks()
        kq.stop()


def queues(k: Kubectl, ns: str, gpus: int) -> str:
    """ResourceFlavor + ClusterQueue (quota: ``gpus`` GPUs) + LocalQueue; its name."""
    uid = uuid.uuid4().hex[:6]
    flavor, cq = f"gpu-{uid}", f"cq-{uid}"
    k.apply(
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
         "metadata": {"name": flavor}, "spec": {}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
         "metadata": {"name": cq},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
             "flavors": [{"name": flavor, "resources": [
                 {"name": "cpu", "nominalQuota": "100"},
                 {"name": "memory", "nominalQuota": "1000Gi"},
                 {"name": "nvidia.com/gpu", "nominalQuota": str(gpus)},
             ]}],
         }]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
         "metadata": {"name": "team", "namespace": ns}, "spec": {"clusterQueue": cq}},
    )  # fmt: skip
    wait_for(
        lambda: any(
            c["type"] == "Active" and c["status"] == "True"
            for c in (get(k, "clusterqueue", cq, "").get("status") or {}).get("conditions", [])
        ),
        timeout=30,
        what=f"ClusterQueue {cq} Active",
    )
    return "team"


def stage(name: str, ns: str, queue: str, **spec: Any) -> dict[str, Any]:
    """`standalone_stage` submitted to the Kueue LocalQueue `queue`."""
    return standalone_stage(name, ns, queue={"kueueQueue": queue}, **spec)


def pods(k: Kubectl, ns: str, name: str) -> list[dict[str, Any]]:
    return k.pods(ns, f"sailvl.io/name={name}")


def running(k: Kubectl, ns: str, name: str) -> int:
    return sum(1 for p in pods(k, ns, name) if p["status"].get("phase") == "Running")


def finish(k: Kubectl, ns: str, name: str) -> None:
    """The stage's pods exit 0 (KWOK), the Job completes, the stage succeeds."""
    for pod in pods(k, ns, name):
        if pod["status"].get("phase") == "Running":
            k.set_pod_exit(pod["metadata"]["name"], ns, 0)
    wait_for(lambda: phase(k, "trainstage", name, ns) == "Succeeded", timeout=60, what=name)


def assert_still_queued(k: Kubectl, ns: str, name: str, seconds: float) -> None:
    """For ``seconds``: no pod of the stage exists and its Job stays suspended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert pods(k, ns, name) == [], f"{name} has pods while queued"
        assert get(k, "job", f"{name}-0", ns)["spec"]["suspend"] is True, "Job unsuspended"
        time.sleep(0.3)


def workload_pending(k: Kubectl, ns: str) -> bool:
    """Kueue made a Workload for the second stage's Job and refused it quota."""
    for wl in k.json("get", "workloads.kueue.x-k8s.io", "-n", ns)["items"]:
        owners = [o["name"] for o in wl["metadata"].get("ownerReferences") or []]
        if "second-0" in owners:
            return condition(wl, "QuotaReserved").get("status") == "False"
    return False


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def test_two_stages_share_quota_for_one(cluster: Any, kueue: Kueue, namespace: str) -> None:
    k = cluster.kubectl
    queue = queues(k, namespace, GPUS_PER_STAGE)
    with operator(cluster.kubeconfig, namespace):
        k.apply(stage("first", namespace, queue))
        wait_for(lambda: running(k, namespace, "first") == 2, timeout=60, what="first runs")
        k.apply(stage("second", namespace, queue))
        wait_for(lambda: workload_pending(k, namespace), timeout=30, what="second's Workload")
        assert_still_queued(k, namespace, "second", 2)
    # The operator restarts while the second stage is queued: kopf's resume handlers
    # reconcile both stages again (within the first seconds).
    with operator(cluster.kubeconfig, namespace):
        assert_still_queued(k, namespace, "second", 8)
        second = get(k, "trainstage", "second", namespace)
        assert second["status"]["phase"] == "Pending", second["status"]
        reserved = condition(second, "QuotaReserved")
        assert reserved["status"] == "False", reserved
        assert "insufficient unused quota" in reserved["message"], reserved
        assert condition(second, "Ready")["reason"] == "Queued"
        assert "quota" in condition(second, "Ready")["message"]
        assert running(k, namespace, "first") == 2
        assert condition(get(k, "trainstage", "first", namespace), "Admitted")["status"] == "True"

        # The first finishes: its quota goes back and Kueue admits the second.
        finish(k, namespace, "first")
        wait_for(lambda: running(k, namespace, "second") == 2, timeout=60, what="second runs")
        wait_for(
            lambda: phase(k, "trainstage", "second", namespace) == "Running",
            timeout=30,
            what="second Running",
        )
        assert condition(get(k, "trainstage", "second", namespace), "Admitted")["status"] == "True"

        # spec.suspend edges go to Kueue's switch (Workload spec.active), not the Job.
        k("patch", "trainstage", "second", "-n", namespace, "--type=merge",
          "-p", '{"spec": {"suspend": true}}')  # fmt: skip
        wait_for(lambda: not pods(k, namespace, "second"), timeout=60, what="second stopped")
        wait_for(
            lambda: phase(k, "trainstage", "second", namespace) == "Suspended",
            timeout=30,
            what="second Suspended",
        )
        k("patch", "trainstage", "second", "-n", namespace, "--type=merge",
          "-p", '{"spec": {"suspend": false}}')  # fmt: skip
        wait_for(lambda: running(k, namespace, "second") == 2, timeout=60, what="second again")
        finish(k, namespace, "second")
