"""Gang scheduling on the real control plane: the operator's PodGroups against the
Volcano and scheduler-plugins PodGroup CRDs as those projects release them
(tests/cluster/crds/, vendored unchanged), owned by the TrainStage, one per restart
attempt, and garbage-collected with it.

No Volcano or coscheduling scheduler runs here: the pods are pointed at the default
scheduler (template.schedulerName) so that KWOK can run and fail them; what is under test
is the operator's side of the contract (the group objects and the pod's group keys)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import parse_resource
from sailvl_operator import builders as b
from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.operator_driver import CRDS, operator
from tests.cluster.test_operator import standalone_stage

pytestmark = pytest.mark.cluster

VENDORED = Path(__file__).parent / "crds"
PLURAL = {
    "volcano": "podgroups.scheduling.volcano.sh",
    "coscheduling": "podgroups.scheduling.x-k8s.io",
}


@pytest.fixture(scope="module")
def gang_crds(cluster: Any) -> None:
    k: Kubectl = cluster.kubectl
    for path in (
        CRDS,
        VENDORED / "volcano-podgroups.yaml",
        VENDORED / "coscheduling-podgroups.yaml",
    ):
        k.apply(path)
    k.wait_established("trainstages.sailvl.io", *PLURAL.values())


def _stage(name: str, ns: str, gang: str) -> dict[str, Any]:
    return standalone_stage(
        name,
        ns,
        maxRestarts=2,
        queue={"gang": gang, "volcanoQueue": "research"},
        resources={"requests": {"cpu": "1", "memory": "1Gi"}},
        template={"schedulerName": "default-scheduler"},
    )


@pytest.mark.parametrize("gang", ["volcano", "coscheduling"])
def test_builder_pod_groups_pass_the_released_schema_strictly(
    cluster: Any, gang_crds: None, namespace: str, gang: str
) -> None:
    """Server-side dry run with strict field validation: an unknown or misspelt field
    (which a plain create would silently prune) is an error here."""
    spec = parse_resource(_stage("ts", namespace, gang))[2]
    group = b.pod_group("ts", namespace, spec, attempt=0)  # type: ignore[arg-type]
    assert group is not None
    proc = _dry_run(cluster.kubectl, group)
    assert proc.returncode == 0, proc.stderr
    bad = {**group, "spec": {**group["spec"], "minMembers": 2}}
    proc = _dry_run(cluster.kubectl, bad)
    assert proc.returncode != 0 and "minMembers" in proc.stderr  # the check can fail


def _dry_run(k: Kubectl, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    args = ("create", "--dry-run=server", "--validate=strict", "-f", "-")
    return k(*args, input=yaml.safe_dump(obj), check=False)


def _groups(k: Kubectl, gang: str, ns: str) -> dict[str, dict[str, Any]]:
    items = k.json("get", PLURAL[gang], "-n", ns)["items"]
    return {i["metadata"]["name"]: i for i in items}


@pytest.mark.parametrize("gang", ["volcano", "coscheduling"])
def test_operator_owns_one_group_per_attempt_and_gc_removes_it(
    cluster: Any, gang_crds: None, namespace: str, gang: str
) -> None:
    k: Kubectl = cluster.kubectl
    k.apply(_stage("g", namespace, gang))
    ts = k.get("trainstage", "g", namespace)
    assert ts is not None
    with operator(cluster.kubeconfig, namespace):
        group = wait_for(
            lambda: _groups(k, gang, namespace).get("g-0"), timeout=60, what="PodGroup g-0"
        )
        assert group["spec"]["minMember"] == 2
        assert group["spec"]["minResources"]["nvidia.com/gpu"] == "4"  # 2 pods x 2 GPUs
        assert group["spec"]["minResources"]["memory"] == "2Gi"
        if gang == "volcano":
            assert group["spec"]["queue"] == "research"
        owner = group["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "TrainStage" and owner["uid"] == ts["metadata"]["uid"]
        pods = wait_for(
            lambda: (
                [
                    p
                    for p in k.pods(namespace, "sailvl.io/name=g")
                    if p.get("status", {}).get("phase") == "Running"
                ]
                or None
            ),
            timeout=60,
            what="running pods of attempt 0",
        )
        for pod in pods:
            meta = pod["metadata"]
            if gang == "volcano":
                assert meta["annotations"]["scheduling.k8s.io/group-name"] == "g-0"
            else:
                assert meta["labels"]["scheduling.x-k8s.io/pod-group"] == "g-0"
        k.fail_pod(pods[0]["metadata"]["name"], namespace, code=1)  # a group restart
        wait_for(
            lambda: "g-1" in _groups(k, gang, namespace) or None, timeout=60, what="PodGroup g-1"
        )
        wait_for(
            lambda: "g-0" not in _groups(k, gang, namespace) or None, timeout=60, what="g-0 deleted"
        )
    k("delete", "trainstage", "g", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: not _groups(k, gang, namespace) or None,
        timeout=60,
        what="PodGroups garbage-collected",
    )
