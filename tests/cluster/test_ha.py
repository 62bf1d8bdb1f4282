"""Two operator replicas with leader election on the real control plane: one leads,
the other stands by doing nothing; when the leader is killed (SIGKILL, no clean-up)
the standby takes the Lease over and carries on, with no duplicate children.

The replicas are separate processes (`kopf run`, as in the chart's Deployment) so that
one can be killed; short lease timings keep the hand-over to a few seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.operator_driver import job_names, wait_running_pods
from tests.cluster.test_operator import crds, standalone_stage  # noqa: F401

pytestmark = pytest.mark.cluster

LEASE = "sailvl-operator-ha"


class Replica:
    def __init__(self, cluster: Any, ns: str, ident: str, logs: Path, health: int = 0) -> None:
        self.ident, self.log = ident, logs / f"{ident}.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "SAILVL_METRICS_PORT": "0",
            "SAILVL_LEADER_ELECTION": "1",
            "SAILVL_LEADER_ELECTION_LEASE": LEASE,
            "SAILVL_OPERATOR_NAMESPACE": ns,
            "POD_NAME": ident,
            "SAILVL_LEADER_LEASE_SECONDS": "6",
            "SAILVL_LEADER_RENEW_SECONDS": "2",
            "SAILVL_LEADER_RETRY_SECONDS": "1",
            "SAILVL_STANDBY_HEALTH_PORT": str(health),
        }
        kopf = str(Path(sys.executable).parent / "kopf")
        args = [kopf, "run", "--standalone", "--namespace", ns, "-m", "sailvl_operator.main"]
        if health:  # as in the chart: one port, the standby's answer first, then kopf's
            args.append(f"--liveness=http://127.0.0.1:{health}/healthz")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for r in started:
        r.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.read().decode() if r.status == 200 else None
    except OSError:
        return None


def _holder(k: Kubectl, ns: str) -> str | None:
    lease = k.get("lease", LEASE, ns)
    return (lease or {}).get("spec", {}).get("holderIdentity")


def test_standby_takes_over_when_the_leader_dies(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
    replicas: list[Replica],
    tmp_path: Path,
) -> None:
    k: Kubectl = cluster.kubectl
    a = Replica(cluster, namespace, "op-a", tmp_path)
    replicas.append(a)
    wait_for(lambda: _holder(k, namespace) == "op-a", timeout=60, what="op-a leads")
    port = _free_port()
    b = Replica(cluster, namespace, "op-b", tmp_path, health=port)
    replicas.append(b)
    wait_for(lambda: "standing by" in b.text(), timeout=60, what="op-b stands by")
    # A standby is alive for the kubelet's liveness probe although kopf has not started.
    assert "standby" in (wait_for(lambda: _health(port), timeout=30, what="standby /healthz"))

    k.apply(standalone_stage("one", namespace))
    wait_for(lambda: job_names(k, namespace, "one") == ["one-0"], timeout=60, what="Job one-0")
    pods = wait_running_pods(k, namespace, "one")
    assert "Handler '" not in b.text(), "the standby handled an event"

    a.proc.kill()  # no SIGTERM, no clean-up: the Lease just stops being renewed
    a.proc.wait(timeout=30)
    k.apply(standalone_stage("two", namespace))
    k.fail_pod(pods[0]["metadata"]["name"], namespace, code=1)  # one-0 fails: a restart
    wait_for(lambda: _holder(k, namespace) == "op-b", timeout=60, what="op-b takes the Lease")
    wait_for(lambda: job_names(k, namespace, "two") == ["two-0"], timeout=60, what="Job two-0")
    wait_for(
        lambda: job_names(k, namespace, "one") == ["one-0", "one-1"], timeout=60, what="Job one-1"
    )
    assert "leading: holding Lease" in b.text()
    # The same port now answers with kopf's own health report.
    wait_for(
        lambda: (h := _health(port)) is not None and "standby" not in h,
        timeout=30,
        what="kopf's /healthz on the same port",
    )
    # No duplicates: one ConfigMap, one Service, one Job per attempt for each stage.
    for stage, jobs in (("one", ["one-0", "one-1"]), ("two", ["two-0"])):
        assert job_names(k, namespace, stage) == jobs
        for kind in ("configmaps", "services"):
            sel = f"sailvl.io/name={stage}"
            assert len(k.json("get", kind, "-n", namespace, "-l", sel)["items"]) == 1
    status = k.get("trainstage", "one", namespace)["status"]  # type: ignore[index]
    assert status["restarts"] == 1
