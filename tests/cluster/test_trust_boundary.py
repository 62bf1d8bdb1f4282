"""The trust boundary between job pods and the operator, with a real token of the job
ServiceAccount (TokenRequest, as a job pod holds one):

- with the chart's ValidatingAdmissionPolicy, a job may patch its progress fields but
  not phase, restarts or conditions (the API server refuses);
- without it, the forged fields are accepted by the API server, and the operator still
  derives phase and restarts from the Jobs it owns: a Curriculum does not hand over on
  a forged ``Succeeded``, and a forged ``restarts`` never makes a second Job.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml

from tests.chart.conftest import helm, render  # noqa: F401 - fixtures
from tests.chart.helpers import Renderer
from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.operator_driver import get, job_names, operator, running_pods, wait_phase
from tests.cluster.test_operator import (  # noqa: F401 - fixture
    crds,
    small_curriculum,
    standalone_stage,
)

pytestmark = pytest.mark.cluster
JOB_SA = "sailvl-job"
FORGED = {"phase": "Succeeded"}


class JobClient:
    """What a job pod can do: PATCH a status subresource with its ServiceAccount token."""

    def __init__(self, cluster: Any, ns: str) -> None:
        k: Kubectl = cluster.kubectl
        self.ns, self.server = ns, cluster.server
        self.token = k("create", "token", JOB_SA, "-n", ns, "--duration=10m").stdout.strip()
        cfg = yaml.safe_load(cluster.kubeconfig.read_text())
        ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
        self.ctx = ssl.create_default_context(cadata=ca.decode())

    def patch(
        self, plural: str, name: str, status: dict[str, Any], dry_run: bool = False
    ) -> tuple[int, str]:
        url = f"{self.server}/apis/sailvl.io/v1alpha1/namespaces/{self.ns}/{plural}/{name}/status"
        req = urllib.request.Request(
            url + ("?dryRun=All" if dry_run else ""),
            data=json.dumps({"status": status}).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/merge-patch+json",
                "Authorization": f"Bearer {self.token}",
            },
        )
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()


def our_policies(k: Kubectl) -> list[str]:
    items = k.json(
        "get", "validatingadmissionpolicybindings", "-l", "app.kubernetes.io/part-of=sailvl"
    )
    return [i["metadata"]["name"] for i in items["items"]]


def test_policy_refuses_forged_status_fields(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
    render: Renderer,  # noqa: F811
) -> None:
    k, ns = cluster.kubectl, namespace
    docs = render({"fullnameOverride": f"vap-{ns}"})
    policy = [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")]
    assert [d["kind"] for d in policy] == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    k.apply(*policy)
    try:
        with operator(cluster.kubeconfig, ns):
            k.apply(standalone_stage("victim", ns))
            wait_for(lambda: len(running_pods(k, ns, "victim-0")) == 2, timeout=60, what="pods")
            wait_phase(k, "trainstage", "victim", ns)
            job = JobClient(cluster, ns)
            # Dry runs go through admission too: wait until the policy is in force.
            wait_for(
                lambda: job.patch("trainstages", "victim", FORGED, dry_run=True)[0] == 403,
                timeout=30,
                what="policy in force",
            )
            code, body = job.patch("trainstages", "victim", {"step": 3, "loss": 1.5})
            assert code == 200, body
            # A job's fatal error (sailvl.runtime.report.report_failure): message and
            # error are the job's to write, as progress is; they carry nothing else in.
            failure = {
                "message": "shard s3://d/x (read): StorageError: gone",
                "error": "StorageError",
            }
            code, body = job.patch("trainstages", "victim", failure)
            assert code == 200, body
            code, body = job.patch("trainstages", "victim", {**failure, "phase": "Failed"})
            assert code == 403 and "phase" in body, (code, body)
            # DataJob pods hold no right on their resource at all (RBAC, before the policy):
            # their failure travels as the container's termination message instead.
            code, body = job.patch("datajobs", "victim", {"message": "x"})
            assert code == 403 and "forbidden" in body.lower(), (code, body)
            for forged in (
                {"phase": "Succeeded"},
                {"restarts": 4},
                {"conditions": []},
                {"completionTime": "2030-01-01T00:00:00Z"},
                {"step": 4, "jobName": "victim-9"},
            ):
                code, body = job.patch("trainstages", "victim", forged)
                assert code == 403, (forged, code, body)
                field = next(f for f in forged if f != "step")
                assert "the operator owns" in body and field in body, body
            st = get(k, "trainstage", "victim", ns)["status"]
            assert (st["phase"], st["restarts"], st["step"]) == ("Running", 0, 3)
            assert (st["message"], st["error"]) == (failure["message"], failure["error"])
    finally:
        for doc in policy:
            k("delete", doc["kind"].lower(), doc["metadata"]["name"], check=False)


def test_operator_does_not_believe_forged_status_without_policy(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    k, ns = cluster.kubectl, namespace
    for name in our_policies(k):  # left by chart tests that installed the whole chart
        k("delete", "validatingadmissionpolicybinding", name, check=False)
    k.apply(small_curriculum("cur", ns))
    with operator(cluster.kubeconfig, ns):
        k.apply(standalone_stage("victim", ns))
        wait_for(lambda: len(running_pods(k, ns, "victim-0")) == 2, timeout=60, what="pods")
        wait_for(lambda: running_pods(k, ns, "cur-caption-0"), timeout=60, what="caption pods")
        wait_phase(k, "captionjob", "cur-caption", ns)
        job = JobClient(cluster, ns)
        wait_for(
            lambda: job.patch("captionjobs", "cur-caption", FORGED, dry_run=True)[0] == 200,
            timeout=30,
            what="no policy in force",
        )
        # A job pod claims the caption step is done: the API server accepts it...
        code, body = job.patch("captionjobs", "cur-caption", {"phase": "Succeeded"})
        assert code == 200, body
        # ...and the operator puts the truth back, and does not start the next step.
        wait_phase(k, "captionjob", "cur-caption", ns)
        time.sleep(3)
        assert (
            k.json("get", "trainstages", "-n", ns, "-l", "sailvl.io/curriculum=cur")["items"] == []
        )
        assert get(k, "curriculum", "cur", ns)["status"]["currentStep"] == "caption"
    # With the operator down, a job pod claims a restart happened: the restarted
    # operator must not create a second Job while the first still runs.
    code, body = job.patch("trainstages", "victim", {"restarts": 1, "phase": "Succeeded"})
    assert code == 200, body
    with operator(cluster.kubeconfig, ns):
        wait_for(
            lambda: (get(k, "trainstage", "victim", ns).get("status") or {}).get("restarts") == 0,
            timeout=30,
            what="restarts re-derived",
        )
        wait_phase(k, "trainstage", "victim", ns)
        time.sleep(2)
    assert job_names(k, ns, "victim") == ["victim-0"]
    assert get(k, "trainstage", "victim", ns)["status"]["jobName"] == "victim-0"
