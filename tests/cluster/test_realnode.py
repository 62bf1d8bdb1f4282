"""The real worker node (controlplane/realnode.py): real containers from the project's
images on a real kubelet, next to the KWOK nodes.

What each test proves through real pods (nothing here is faked):
- the CPU job image runs its entrypoint (`sailvl`) on the node, and `kubectl logs` works;
- the pod network and cluster DNS: pod 1 of a 2-pod Indexed Job resolves rank 0 through
  the headless Service name (as MASTER_ADDR does) and talks TCP to it;
- ServiceAccount tokens, kube-proxy and `kubectl exec`: a pod reads its own object
  from the API server through the `kubernetes` Service with its mounted token;
- the chart installs the operator from its image (rendered by Helm with test values,
  applied as `helm install` would): the operator runs as a pod under the chart's
  ServiceAccount and RBAC, and writes a spec error into a TrainStage's status;
- stop() undoes every host change (sysctls, iptables chains, bridge, mounts, processes).

The node needs root, `make tools` (Debian packages, kubelet/kube-proxy/CoreDNS, images):
when anything is missing the fixture FAILS naming it; it never skips.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import helm, render  # noqa: F401 - fixtures
from tests.chart.helpers import REPO, Renderer
from tests.cluster.controlplane import hoststate
from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.controlplane.harness import Config, ControlPlane
from tests.cluster.controlplane.nodes import NodeSet
from tests.cluster.controlplane.realnode import REAL_NODE_LABEL, RealNodeConfig

pytestmark = pytest.mark.cluster

JOB_IMAGE = "localhost/sailvl/job-cpu:local"
OPERATOR_IMAGE = ("localhost/sailvl/operator", "local")
BASE_IMAGE = "localhost/sailvl/base:bookworm"
TOOLS = "make tools (install-node-tools.sh, build.sh, build-images.sh)"


@pytest.fixture(scope="module")
def real() -> Iterator[tuple[ControlPlane, hoststate.HostState]]:
    """A control plane with one KWOK node and one real node, and the host as it was."""
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (kubelet, containerd, iptables)", pytrace=False)
    config = Config(
        nodes=NodeSet(gpu_nodes=1, ascend_nodes=0, cpu_nodes=0), real_node=RealNodeConfig()
    )
    missing = config.missing_binaries()
    if missing:
        pytest.fail(f"real node: missing {', '.join(missing)}; run {TOOLS}", pytrace=False)
    cp = ControlPlane(config)
    cp.start()
    try:
        # The node's own snapshot: taken once it holds the host (another real node, of
        # another test session, may have been running until then).
        assert cp.node is not None and cp.node.host_before is not None
        yield cp, cp.node.host_before
    finally:
        cp.stop()


@pytest.fixture
def k(real: tuple[ControlPlane, hoststate.HostState]) -> Kubectl:
    assert real[0].kubectl is not None
    return real[0].kubectl


@pytest.fixture
def ns(k: Kubectl) -> Iterator[str]:
    name = k.create_namespace("real")
    yield name
    k("delete", "namespace", name, "--wait=false", check=False)


def restricted(uid: int = 1000) -> dict[str, Any]:
    """A container securityContext the `restricted` Pod Security level admits."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod(name: str, image: str, ns: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": restricted(),
                    **container,
                }
            ],
        },
    }


def wait_phase(k: Kubectl, name: str, ns: str, phase: str, timeout: float) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        p = k.get("pod", name, ns) or {}
        got = p.get("status", {}).get("phase")
        if got == "Failed" and phase != "Failed":
            logs = k("logs", name, "-n", ns, check=False).stdout
            raise AssertionError(f"pod {name} Failed: {p.get('status')}\n{logs}")
        return p if got == phase else None

    return wait_for(check, timeout=timeout, what=f"pod {ns}/{name} {phase}", interval=1)


def test_job_image_runs_its_entrypoint_on_the_real_node(k: Kubectl, ns: str) -> None:
    k.apply(pod("help", JOB_IMAGE, ns, args=["--help"]))
    done = wait_phase(k, "help", ns, "Succeeded", timeout=300)
    node = k.get("node", done["spec"]["nodeName"]) or {}
    assert node["metadata"]["labels"].get(REAL_NODE_LABEL[0]) == REAL_NODE_LABEL[1]
    logs = k("logs", "help", "-n", ns).stdout
    for sub in ("train", "caption", "eval"):
        assert sub in logs, logs


RDZV = textwrap.dedent(
    """
    import os, socket, sys, time
    rank, ns = int(os.environ["JOB_COMPLETION_INDEX"]), os.environ["NS"]
    if rank == 0:
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 29500)); s.listen(1); s.settimeout(120)
        c, _ = s.accept(); c.sendall(b"ack:" + c.recv(64)); c.close()
        sys.exit(0)
    name, t0 = f"rdzv-0.rdzv.{ns}.svc.cluster.local", time.time()
    while True:  # rank 0's record appears once its pod has an IP: retry, as rendezvous does
        try:
            ip = socket.gethostbyname(name)
            c = socket.create_connection((ip, 29500), timeout=5)
            break
        except OSError:
            if time.time() - t0 > 120:
                raise
            time.sleep(0.5)
    c.sendall(b"rank1"); print("resolved", ip, c.recv(64).decode(), flush=True)
    """
)


def test_indexed_job_resolves_rank_0_through_the_headless_service(k: Kubectl, ns: str) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "rdzv", "namespace": ns},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"app": "rdzv"},
            "ports": [{"name": "c10d", "port": 29500}],
        },
    }
    template = pod("x", BASE_IMAGE, ns, command=["python3", "-c", RDZV])
    template["spec"]["containers"][0]["env"] = [{"name": "NS", "value": ns}]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "rdzv", "namespace": ns},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "rdzv"}},
                "spec": {**template["spec"], "subdomain": "rdzv"},
            },
        },
    }
    k.apply(service, job)
    wait_for(
        lambda: (k.get("job", "rdzv", ns) or {}).get("status", {}).get("succeeded") == 2,
        timeout=300,
        what="job rdzv: 2 succeeded",
        interval=1,
    )
    pods = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p
            for p in k.pods(ns, "app=rdzv")}  # fmt: skip
    logs = k("logs", pods["1"]["metadata"]["name"], "-n", ns).stdout
    assert logs.split() == ["resolved", pods["0"]["status"]["podIP"], "ack:rank1"], logs


WHOAMI = textwrap.dedent(
    """
    import json, os, ssl, urllib.request
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    ns, token = open(sa + "/namespace").read(), open(sa + "/token").read()
    req = urllib.request.Request(
        f"https://kubernetes.default.svc/api/v1/namespaces/{ns}/pods/{os.environ['POD']}",
        headers={"Authorization": "Bearer " + token})
    ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
    print(json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["metadata"]["uid"])
    """
)


def test_exec_and_service_account_token_reach_the_api_server(k: Kubectl, ns: str) -> None:
    reader = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "pod-reader", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
        },
    ]  # fmt: skip
    sleeper = pod("sleeper", BASE_IMAGE, ns, command=["sleep", "600"])
    sleeper["spec"]["containers"][0]["env"] = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    k.apply(*reader, sleeper)
    running = wait_phase(k, "sleeper", ns, "Running", timeout=120)
    out = k("exec", "sleeper", "-n", ns, "--", "python3", "-c", WHOAMI, timeout=60)
    assert out.stdout.strip() == running["metadata"]["uid"], out.stderr


def test_chart_runs_the_operator_image_under_its_service_account(
    k: Kubectl,
    ns: str,
    render: Renderer,  # noqa: F811
) -> None:
    k.apply(REPO / "charts" / "sailvl-operator" / "crds", server_side=True)
    k.wait_established("trainstages.sailvl.io")
    values = {
        "fullnameOverride": "op",
        "image": {"repository": OPERATOR_IMAGE[0], "tag": OPERATOR_IMAGE[1]},
        "jobImages": {key: JOB_IMAGE for key in ("trainerCuda", "captioner", "evaluator")},
    }
    docs = [d for d in render(values, namespace=ns) if not d["apiVersion"].startswith("monit")]
    k.apply(*docs, server_side=True)
    k("rollout", "status", "deployment/op", "-n", ns, "--timeout=300s", timeout=320)
    (op,) = k.pods(ns, "app.kubernetes.io/name=sailvl-operator")
    assert op["spec"]["serviceAccountName"] == "op"
    assert op["spec"]["containers"][0]["image"] == ":".join(OPERATOR_IMAGE)
    assert op["spec"]["nodeName"] == "real-0"
    # A spec error only the operator finds (the CRD schema admits it): its pod writes
    # the InvalidSpec condition through the chart's RBAC.
    k.apply({
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "TrainStage",
        "metadata": {"name": "toobig", "namespace": ns},
        "spec": {
            "preset": "sft-knowledge", "model": {"preset": "2b"},
            "data": [{"uri": "s3://d/x"}], "budget": {"steps": 5}, "maxTiles": 40,
            "output": "s3://o/x",
        },
    })  # fmt: skip

    def invalid() -> dict[str, Any] | None:
        conds = (k.get("trainstage", "toobig", ns) or {}).get("status", {}).get("conditions", [])
        return next((c for c in conds if c.get("reason") == "InvalidSpec"), None)

    cond = wait_for(invalid, timeout=120, what="InvalidSpec from the operator pod", interval=1)
    assert "maxTiles" in cond["message"]


def test_stop_undoes_every_host_change(real: tuple[ControlPlane, hoststate.HostState]) -> None:
    cp, before = real
    assert cp.node is not None
    node_dir, socket = cp.node.dir, str(cp.node.socket)
    cp.stop()  # the fixture's stop() afterwards is a no-op
    after = hoststate.HostState.snapshot(Path("/nonexistent"), before.bridge)
    assert after.sysctls == before.sysctls
    assert after.chains == before.chains
    assert after.existing == before.existing
    assert not after.bridge_existed
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node_dir) not in mounts
    assert not list(Path("/sys/fs/cgroup").glob("*/kubepods*"))
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert socket not in procs and str(node_dir) not in procs
