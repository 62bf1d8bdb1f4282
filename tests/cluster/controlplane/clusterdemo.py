"""A Curriculum through real pods: the pieces the real-node e2e test and `make cluster-demo`
share, and the demo itself (``python -m tests.cluster.controlplane.clusterdemo``, root).

- :func:`install_operator`: ``helm install`` of ``charts/sailvl-operator`` (Helm's own Go
  SDK through ``helm-python-sdk``; the chart's ``crds/`` included) with the images the
  test cluster builds (``build-images.sh``): the operator runs as a pod on the real node
  under the chart's ServiceAccount and RBAC, and every job image is the CPU job image;
- :func:`start_pod_s3`: SeaweedFS bound to the pod network's gateway (the bridge
  address): pods and the host reach it, nothing beyond the machine does;
- :func:`restricted_namespace` + :func:`storage_secret`: a namespace whose Pod Security
  level is ``restricted`` (enforced), and the Secret whose keys become the job pods'
  ``AWS_*`` variables;
- :func:`write_assets`: synthetic data of the given sizes, the synthetic benchmarks and
  the randomly initialised tiny model, written to S3 from this process (the e2e test's
  small set; the demo writes what ``sailvl.io/local-setup`` writes for ``make demo``,
  ``sailvl.local.assets.ensure_assets``, the understanding suite's sets included);
- :func:`cluster_curriculum`: ``examples/demo/curriculum.yaml`` made a cluster resource:
  ``${RUN}`` is the S3 run folder, the storage Secret is named, no local-setup
  annotation, and each stage is 2 pods of one CPU process (DeepSpeed over gloo between
  the pods, rank 0 found through the headless Service name);
- :func:`report`: the ``make demo`` report (``sailvl.local.report``) from the
  Curriculum's status rows and its children's statuses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .client import Kubectl, wait_for

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "sailvl-operator"
DEMO = REPO / "examples" / "demo" / "curriculum.yaml"
JOB_IMAGE = "localhost/sailvl/job-cpu:local"
OPERATOR_IMAGE = ("localhost/sailvl/operator", "local")
OPERATOR_NS = "sailvl-system"
RELEASE = "sailvl"
STORAGE_SECRET = "s3-credentials"
RESTRICTED = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")}
JOB_IMAGE_KEYS = (
    "trainerCuda", "trainerAscend", "captioner", "evaluator", "captionerAscend", "evaluatorAscend",
)  # fmt: skip


def chart_values() -> dict[str, Any]:
    """The test values: the locally built images, nothing pulled."""
    return {
        "fullnameOverride": RELEASE,
        "image": {"repository": OPERATOR_IMAGE[0], "tag": OPERATOR_IMAGE[1]},
        "jobImages": dict.fromkeys(JOB_IMAGE_KEYS, JOB_IMAGE),
    }


def restricted_namespace(kubectl: Kubectl, name: str) -> None:
    """Create (or label) namespace `name` with Pod Security `restricted` enforced."""
    kubectl.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}
    )
    wait_for(
        lambda: kubectl.get("serviceaccount", "default", name),
        timeout=60,
        what=f"serviceaccount default in {name}",
    )


def install_operator(kubeconfig: Path, kubectl: Kubectl, timeout: int = 600) -> dict[str, Any]:
    """`helm install sailvl charts/sailvl-operator -n sailvl-system` and wait until the
    operator pod is Ready; returns that pod."""
    import helm_python

    restricted_namespace(kubectl, OPERATOR_NS)
    helm = helm_python.Config(kubeconfig_path=str(kubeconfig), namespace=OPERATOR_NS)
    helm.install(str(CHART), RELEASE, chart_values(), namespace=OPERATOR_NS, timeout=timeout)
    kubectl(
        "rollout", "status", f"deployment/{RELEASE}", "-n", OPERATOR_NS,
        f"--timeout={timeout}s", timeout=timeout + 30,
    )  # fmt: skip
    (pod,) = kubectl.pods(OPERATOR_NS, "app.kubernetes.io/name=sailvl-operator")
    return pod


def start_pod_s3(gateway: str) -> Any:
    """SeaweedFS on the gateway address (tests/fixtures/s3server.py), stopped by PID."""
    from tests.fixtures.s3server import start_s3_server

    return start_s3_server("weed", host=gateway)


def storage_secret(namespace: str, s3: Any) -> dict[str, Any]:
    """The Secret `storage.secret` names (keys: examples/secrets.yaml)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": STORAGE_SECRET, "namespace": namespace},
        "type": "Opaque",
        "stringData": {
            "accessKeyId": s3.access_key,
            "secretAccessKey": s3.secret_key,
            "endpoint": s3.endpoint,
            "region": "us-east-1",
        },
    }


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then put the old values back."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_assets(s3: Any, run: str, sizes: dict[str, int]) -> None:
    """Data (raw, pretrain, sft), benchmarks and the initial tiny model under `run`."""
    from sailvl.eval.synthetic import write_synthetic
    from sailvl.local.assets import save_initial_model, write_datasets

    with environ(s3.env()):
        write_datasets(run, sizes)
        write_synthetic(f"{run}/bench", n=sizes["bench"], seed=0, heldout=True)
        save_initial_model(f"{run}/models/tiny-init")


def cluster_curriculum(name: str, namespace: str, run: str, *, nodes: int = 2) -> dict[str, Any]:
    """The demo Curriculum as a cluster resource (see the module docstring)."""
    doc = yaml.safe_load(DEMO.read_text().replace("${RUN}", run))
    doc["metadata"] = {"name": name, "namespace": namespace}
    spec = doc["spec"]
    spec["storage"]["secret"] = {"name": STORAGE_SECRET}
    spec["defaults"].update(nodes=nodes, devicesPerNode=1)
    return dict(doc)


# -- the report ------------------------------------------------------------------------


def report(kubectl: Kubectl, namespace: str, name: str, out: Path) -> Path:
    """`make demo`'s report (summary.md and plots) from the cluster's statuses: each
    step row of the Curriculum, with its child's own status (losses are the last loss
    each stage reported; the local executor samples more of them)."""
    from sailvl.api.curriculum import CurriculumSpec
    from sailvl.local.report import write_report
    from sailvl.local.state import RunState, StepRecord

    cur = kubectl.get("curriculum", name, namespace) or {}
    spec = CurriculumSpec.model_validate(cur["spec"])
    state = RunState(out / "state.json")
    for row in cur.get("status", {}).get("steps") or []:
        child = kubectl.get(row["kind"].lower(), row["child"], namespace) or {}
        st = child.get("status") or {}
        rec = StepRecord(phase=row.get("phase") or "Pending")
        rec.scores = dict(row.get("scores") or st.get("scores") or {})
        rec.tokens = row.get("tokens") or st.get("tokens")
        rec.status = st
        if st.get("loss") is not None:
            rec.losses = [[int(st.get("step") or 0), float(st["loss"])]]
        rec.seconds = _seconds(row.get("startTime"), row.get("completionTime"))
        rec.restarts = int(st.get("restarts") or 0)
        state.steps[row["name"]] = rec
    state.extra["result"] = {
        "action": cur.get("status", {}).get("phase", "running"),
        "message": cur.get("status", {}).get("message", ""),
    }
    state.save()
    return write_report(out, spec, state)


def _seconds(start: str | None, end: str | None) -> int | None:
    from datetime import datetime

    if not start or not end:
        return None
    # RFC 3339 as the status writers give it: "...Z" or "...+00:00" (both parse in 3.11).
    return int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


# -- following the run -----------------------------------------------------------------


def table_rows(text: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """The rows of `kubectl get sailvl` output: (header, row, cells by column name).
    kubectl prints one table per kind, separated by a blank line, columns left-aligned
    under headers that are separated by at least two spaces."""
    for block in text.strip().split("\n\n"):
        header, *rows = block.splitlines()
        spans = [m.span() for m in re.finditer(r"\S+(?: \S+)*", header)]
        names = [header[a:b] for a, b in spans]
        starts = [a for a, _ in spans] + [None]
        for row in rows:
            cells = [row[a:b].strip() for a, b in zip(starts, starts[1:], strict=False)]
            yield header, row, dict(zip(names, cells, strict=True))


class Follower:
    """`kubectl get sailvl -w` for the category: kubectl watches one resource type only
    ("error: you may only specify a single resource type"), so :meth:`update` takes
    each `kubectl get sailvl` output and returns the rows that changed since the last
    one (AGE left out of the comparison, as it changes on every poll), each kind's
    header before its rows whenever the kind differs from the row printed last."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}
        self.last_header = ""

    def update(self, text: str) -> list[str]:
        out = []
        for header, row, cells in table_rows(text):
            cells.pop("AGE", None)
            if self.seen.get(cells["NAME"]) == cells:
                continue
            self.seen[cells["NAME"]] = cells
            if header != self.last_header:
                out.append(header)
                self.last_header = header
            out.append(row)
        return out


def follow(kubectl: Kubectl, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    """Print the changed rows of `kubectl get sailvl -n <namespace>` every few seconds
    until Curriculum `name` is Succeeded or Failed; returns the Curriculum."""
    follower, deadline = Follower(), time.monotonic() + timeout
    while True:
        table = kubectl("get", "sailvl", "-n", namespace, check=False).stdout
        for line in follower.update(table) if table.strip() else []:
            print(line, flush=True)
        cur = kubectl.get("curriculum", name, namespace) or {}
        if cur.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return cur
        if time.monotonic() > deadline:
            raise TimeoutError(f"Curriculum {name} not finished after {timeout:.0f} s")
        time.sleep(5)


# -- make cluster-demo ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Control plane + real node, the chart, S3 on the pod network, the demo Curriculum
    followed like `kubectl get sailvl -w` (:func:`follow`), then the report; everything
    stopped at the end (or on Ctrl-C, SIGTERM, SIGHUP)."""
    from .harness import Config, ControlPlane, stop_on_signals
    from .nodes import NodeSet
    from .realnode import RealNodeConfig

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/cluster-demo"), help="report")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds for the run")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    node = RealNodeConfig()
    cp = ControlPlane(
        Config(nodes=NodeSet(gpu_nodes=0, ascend_nodes=0, cpu_nodes=1), real_node=node)
    )
    s3 = None
    stop_on_signals()
    try:
        cp.start()
        assert cp.kubectl is not None
        k = cp.kubectl
        print(f"control plane with real node {node.name} in {cp.startup_seconds:.0f} s")
        print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        s3 = start_pod_s3(node.gateway)
        bucket = s3.new_bucket("demo")
        run = f"s3://{bucket}/demo"
        pod = install_operator(cp.kubeconfig, k)
        print(f"operator pod {pod['metadata']['name']} (helm release {RELEASE})", flush=True)
        from sailvl.local.assets import ensure_assets

        # What `sailvl.io/local-setup: synthetic` does for `make demo`, the understanding
        # suite's sets included (the demo's pretraining evals read them).
        with environ(s3.env()):
            ensure_assets(run, "synthetic")
        print(f"synthetic data, benchmarks and the tiny model written to {run}", flush=True)
        ns = "demo"
        restricted_namespace(k, ns)
        k.apply(storage_secret(ns, s3), cluster_curriculum("demo", ns, run))
        print(f"following: kubectl get sailvl -n {ns} (rows that changed)", flush=True)
        cur = follow(k, ns, "demo", args.timeout)
        if args.out.exists():
            shutil.rmtree(args.out)
        summary = report(k, ns, "demo", args.out)
        print(summary.read_text())
        print(f"demo: {cur['status']['phase']}: {cur['status'].get('message', '')}")
        print(f"report: {summary}; {time.monotonic() - t0:.0f} s in all")
        return 0 if cur["status"]["phase"] == "Succeeded" else 1
    except KeyboardInterrupt:
        return 130
    finally:
        if s3 is not None:
            s3.stop()
        cp.stop()


if __name__ == "__main__":
    sys.exit(main())
