"""Monitoring for real: a real Prometheus (tests/fixtures/prometheus.py) scrapes what the
chart's ServiceMonitor and PodMonitor describe while a Curriculum runs, evaluates the
chart's PrometheusRule, and answers every PromQL expression of the Grafana dashboard.

What is real and what is not:
- the operator runs as a host process (`kopf run`) and serves /metrics on the port the
  chart's Deployment names `metrics`, found by following ServiceMonitor -> Service ->
  targetPort -> container port in the rendered chart; Prometheus scrapes it with the
  ServiceMonitor's path, interval and honorLabels (a static target: the operator is not
  a pod here, so there are no Endpoints to discover);
- job pods are selected by the PodMonitor's selector, namespace selector and port
  name, turned into relabelling rules as the Prometheus Operator's generated config
  does, over the pod labels Kubernetes discovery gives (Debian's Prometheus has no
  Kubernetes discovery; `PodDiscovery` lists the pods from the API server into a
  file_sd file with the same `__meta_kubernetes_pod_*` labels);
- the Curriculum's own job pods run on KWOK GPU nodes (the test decides their fates), so
  they serve nothing; the job series come from one real pod on the real node, in the
  CPU job image, carrying the labels and `metrics` port the operator gave the running
  TrainStage's pod, serving the train/caption/eval families with the image's
  `sailvl.runtime.metrics` (tests/fixtures/prometheus_jobpod.py: made-up values).

Alerts are checked in the situations they are written for: SailvlTrainNoProgress stays
quiet while the trainer steps and fires once it stalls; SailvlStageFailed fires when the
stage's pods fail with no restarts left. Needs root and the real node (`make tools`);
run it under `flock /tmp/sailvl-realnode.lock`, like every real-node test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import helm, render  # noqa: F401 - fixtures
from tests.chart.helpers import CHART, Renderer, find
from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.controlplane.nodes import KWOK_ANNOTATION, KWOK_TAINT
from tests.cluster.controlplane.realnode import REAL_NODE_LABEL
from tests.cluster.operator_driver import CRDS, drive, phase, running_pods
from tests.cluster.test_operator import small_curriculum
from tests.cluster.test_operator_metrics import operator_process
from tests.cluster.test_realnode import JOB_IMAGE, k, ns, real, restricted  # noqa: F401
from tests.fixtures import prometheus_jobpod
from tests.fixtures.prometheus import (
    PodDiscovery,
    Prometheus,
    pod_monitor_namespaces,
    pod_monitor_scrape,
    selectors,
    service_monitor_port,
    service_monitor_scrape,
)

pytestmark = pytest.mark.cluster

NO_PROGRESS_MINUTES = 1
VALUES: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "interval": "1s", "scrapeTimeout": "1s"},
    "podMonitor": {"enabled": True, "interval": "1s"},
    "prometheusRule": {
        "enabled": True,
        "failedForMinutes": 0,
        "noProgressMinutes": NO_PROGRESS_MINUTES,
        "noProgressForMinutes": 0,
    },
}


def dashboard_exprs() -> list[str]:
    board = json.loads((CHART / "dashboards" / "sailvl.json").read_text())
    out: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            out.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))

    walk(board["panels"])
    return out


def exporter_pod(
    kc: Kubectl, like: dict[str, Any], pods_ns: str, names: list[str]
) -> dict[str, Any]:
    """A real pod with the labels and ports of the operator's pod `like` (another
    namespace, so the operator never counts it), serving the job metrics."""
    script = Path(prometheus_jobpod.__file__).read_text()
    kc.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "jobpod", "namespace": pods_ns},
            "data": {"jobpod.py": script},
        }
    )
    ports = [p for c in like["spec"]["containers"] for p in c.get("ports", [])]
    assert ports, "the operator's job pod declares no container port"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jobpod", "namespace": pods_ns, "labels": like["metadata"]["labels"]},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": dict([REAL_NODE_LABEL]),
            "volumes": [{"name": "src", "configMap": {"name": "jobpod"}}],
            "containers": [
                {
                    "name": "main",
                    "image": JOB_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "/src/jobpod.py", *names],
                    "ports": ports,
                    "volumeMounts": [{"name": "src", "mountPath": "/src"}],
                    "securityContext": restricted(),
                }
            ],
        },
    }


@pytest.fixture
def stoppers() -> Iterator[list[Prometheus | PodDiscovery]]:
    """Holds the Prometheus (and its pod discovery) a test starts; stopped at the end,
    Prometheus by its PID."""
    started: list[Prometheus | PodDiscovery] = []
    yield started
    for p in reversed(started):
        p.stop()


def test_prometheus_scrapes_chart_targets_and_alerts_fire(
    real: Any,  # noqa: F811
    k: Kubectl,  # noqa: F811
    ns: str,  # noqa: F811
    render: Renderer,  # noqa: F811
    stoppers: list[Prometheus | PodDiscovery],
    tmp_path: Path,
) -> None:
    cp = real[0]
    docs = render(VALUES)
    (sm,) = find(docs, "ServiceMonitor")
    (pm,) = find(docs, "PodMonitor")
    (rule,) = find(docs, "PrometheusRule")
    endpoint, port = service_monitor_port(sm, find(docs, "Service"), find(docs, "Deployment"))

    # The Curriculum's GPU pods go to the KWOK GPU node; untaint it so they may.
    for node in k.json("get", "nodes")["items"]:
        if (node["metadata"].get("annotations") or {}).get(KWOK_ANNOTATION[0]) == KWOK_ANNOTATION[
            1
        ]:
            k("taint", "nodes", node["metadata"]["name"], f"{KWOK_TAINT['key']}-", check=False)
    k.apply(CRDS)
    k.wait_established("curricula.sailvl.io")
    pods_ns = k.create_namespace("jobpods")

    cur = "mon"
    body = small_curriculum(cur, ns, max_restarts=0)
    body["spec"]["defaults"].update(nodes=1, devicesPerNode=1)
    body["spec"]["caption"]["parallelism"] = 1
    stage, caption, suite = f"{cur}-pt-alignment", f"{cur}-caption", f"{cur}-pt-alignment-eval"

    with operator_process(cp.kubeconfig, ns, tmp_path / "operator.log", port=port):
        scrape = [service_monitor_scrape(sm, endpoint, f"127.0.0.1:{port}")]
        sd_file = tmp_path / "pods.json"
        scrape += pod_monitor_scrape(pm, sd_file)

        def list_pods(n: str | None) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = k.json("get", "pods", *(["-n", n] if n else ["-A"]))[
                "items"
            ]
            return items

        stoppers.append(PodDiscovery(list_pods, pod_monitor_namespaces(pm), sd_file))
        prom = Prometheus(tmp_path / "prometheus", scrape, rule["spec"]["groups"])
        stoppers.append(prom)

        k.apply(body)
        # Caption pods exit 0; the first stage's pods are left running.
        drive(
            k,
            ns,
            lambda: (
                phase(k, "trainstage", stage, ns) == "Running"
                and bool(running_pods(k, ns, owner=stage))
            ),
            exit_code=lambda pod: (
                0 if pod["metadata"]["labels"].get("sailvl.io/kind") == "CaptionJob" else None
            ),
            timeout=120,
        )
        (train_pod,) = running_pods(k, ns, owner=stage)
        k.apply(exporter_pod(k, train_pod, pods_ns, [ns, stage, caption, suite]))
        k.wait_pod_phase("jobpod", pods_ns, "Running", timeout=300)

        # Both targets are found and up: the operator through the ServiceMonitor's
        # scrape config, the real pod through the PodMonitor's discovery and relabelling.
        def up() -> list[dict[str, Any]] | None:
            targets = prom.targets()
            ours = [
                t
                for t in targets
                if t["health"] == "up"
                and (
                    t["labels"].get("pod") == "jobpod"
                    or t["scrapePool"].startswith("serviceMonitor/")
                )
            ]
            return ours if len(ours) == 2 else None

        wait_for(up, timeout=60, what=f"2 targets up; log: {prom.log_tail()}")
        # honorLabels: the job series carry the resource's namespace, not the pod's.
        (loss,) = prom.query(f'sailvl_train_loss{{name="{stage}"}}')
        assert loss["metric"]["namespace"] == ns and loss["metric"]["pod"] == "jobpod", loss

        # Every dashboard expression and every sailvl selector of every alert rule
        # returns series while the Curriculum runs.
        # The Experiments row is about Experiments, which a Curriculum run has none of
        # (tests/cluster/test_experiment.py reads those gauges from /metrics).
        exprs = [
            e.replace("$namespace", ns) for e in dashboard_exprs() if "sailvl_experiment_" not in e
        ]
        alert_rules = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
        for r in alert_rules:
            exprs += selectors(r["expr"])
        assert len(exprs) > 20

        def empty() -> list[str] | None:
            missing = [e for e in exprs if not prom.query(e)]
            return missing or None

        try:
            wait_for(lambda: empty() is None, timeout=60, what="series for every expression")
        except Exception as err:
            raise AssertionError(f"no series for: {empty()}") from err

        # A stepping trainer raises no alert; a stalled one does after noProgressMinutes.
        assert prom.firing("SailvlTrainNoProgress") == []
        assert prom.firing("SailvlStageFailed") == []
        k("exec", "jobpod", "-n", pods_ns, "--", "touch", "/tmp/stall")
        fired = wait_for(
            lambda: prom.firing("SailvlTrainNoProgress"),
            timeout=NO_PROGRESS_MINUTES * 60 + 60,
            what="SailvlTrainNoProgress firing",
            interval=2,
        )
        assert [(a["namespace"], a["name"]) for a in fired] == [(ns, stage)]
        # It fired for the stall: the last step is older than noProgressMinutes.
        (age,) = prom.query(f'time() - sailvl_train_last_step_timestamp_seconds{{name="{stage}"}}')
        assert float(age["value"][1]) > NO_PROGRESS_MINUTES * 60, age

        # The stage's pod fails with no restarts left: the stage (and its Curriculum)
        # end Failed, SailvlStageFailed fires, and the no-progress alert resolves.
        drive(k, ns, lambda: phase(k, "trainstage", stage, ns) == "Failed", exit_code=lambda p: 3)
        wait_for(
            lambda: (
                {(a["kind"], a["name"]) for a in prom.firing("SailvlStageFailed")}
                >= {("TrainStage", stage), ("Curriculum", cur)}
            ),
            timeout=60,
            what="SailvlStageFailed firing",
        )
        wait_for(
            lambda: prom.firing("SailvlTrainNoProgress") == [],
            timeout=30,
            what="SailvlTrainNoProgress resolved",
        )
