"""The operator's resource gauges on /metrics come from the watch state: they count the
resources that exist (after creates, a deletion, and an operator restart) and drop the
series of a deleted resource. The operator runs as a real process (``kopf run``) so
that a restart starts from nothing, as it does in a pod."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.controlplane.client import wait_for
from tests.cluster.operator_driver import phase
from tests.cluster.test_operator import crds, standalone_stage  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def operator_process(
    kubeconfig: Path, ns: str, log: Path, port: int | None = None
) -> Iterator[int]:
    """`kopf run` in its own process; yields its metrics port (`port`, else a free one);
    stopped by its PID."""
    port = port or free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "SAILVL_METRICS_PORT": str(port)}
    kopf = Path(sys.executable).parent / "kopf"
    cmd = [str(kopf), "run", "--standalone", "-n", ns, "-m", "sailvl_operator.main"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: scrape(port) is not None, timeout=60, what="operator /metrics")
        yield port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def resources(port: int, phase_: str) -> float | None:
    got = scrape(port) or {}
    return got.get(("sailvl_operator_resources", (("kind", "TrainStage"), ("phase", phase_))))


def series_of(port: int, name: str) -> list[dict[str, str]]:
    got = scrape(port) or {}
    return [
        dict(labels)
        for (metric, labels), _ in got.items()
        if metric == "sailvl_operator_resource_phase" and dict(labels).get("name") == name
    ]


def bad_stage(name: str, ns: str) -> dict[str, Any]:
    stage = standalone_stage(name, ns, maxTiles=40)
    stage["spec"]["model"] = {"preset": "2b"}  # 40 tiles is over the 2b context: InvalidSpec
    return stage


def test_resource_gauges_follow_the_watch_state(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
    tmp_path: Path,
) -> None:
    k, ns = cluster.kubectl, namespace
    log = tmp_path / "operator.log"
    with operator_process(cluster.kubeconfig, ns, log) as port:
        k.apply(bad_stage("bad-a", ns), bad_stage("bad-b", ns), standalone_stage("good", ns))
        for name, want in (("bad-a", "Failed"), ("bad-b", "Failed"), ("good", "Running")):
            wait_for(
                lambda n=name, w=want: phase(k, "trainstage", n, ns) == w, timeout=60, what=name
            )
            if name == "good":
                pods = wait_for(lambda: k.pods(ns, "sailvl.io/name=good"), timeout=30, what="pods")
                assert pods
        wait_for(lambda: resources(port, "Failed") == 2, timeout=30, what="2 Failed")
        assert resources(port, "Running") == 1
        assert series_of(port, "bad-a"), "a per-resource series while it exists"
        k("delete", "trainstage", "bad-a", "-n", ns)
        wait_for(lambda: resources(port, "Failed") == 1, timeout=30, what="1 Failed")
        assert series_of(port, "bad-a") == []
        assert series_of(port, "bad-b")
    time.sleep(1)
    # A restarted operator writes nothing for resources that did not change; it must
    # count them anyway (from the initial list of its watches).
    with operator_process(cluster.kubeconfig, ns, log) as port:
        wait_for(lambda: resources(port, "Failed") == 1, timeout=30, what="1 Failed after restart")
        assert resources(port, "Running") == 1
        assert resources(port, "Succeeded") == 0
        assert series_of(port, "bad-b") and series_of(port, "bad-a") == []
