"""A CaptionJob at the paper's scale on the real control plane: 30,000 shards.

300M images in shards of 10,000 is ~30,000 shards. The operator runs as in production
(`kopf run`, a subprocess whose peak RSS is read from /proc), the CaptionJob's Indexed
Job runs its pods on KWOK nodes, and the test plays the pods: each Running pod's index
claims and commits shards with the job suite's own protocol (`sailvl.caption.claims`
`Claimer`, `shards.commit_shard`, `write_output_manifest`, status from
`caption.main.aggregate` merge-patched like a pod's reporter). Stood in: the captioning
of each shard (backend + Parquet per shard, tested in tests/unit/test_caption_*.py and
tests/integration/test_caption_balance.py); here every shard's output is the same tiny
Parquet file, and the input is a synthetic manifest of 30,000 one-sample shards (no
input files: claims need only the keys). Stores on tmpfs when there is one.

Asserted: every shard committed exactly once; the output manifest built from 30,000
index objects; the CaptionJob Succeeded with shardsTotal = shardsDone = 30,000; its
whole object stays under 16 KiB (status holds counters, nothing per shard or per pod);
the operator's peak RSS under its 250 MB goal; the Job has `parallelism` completions,
not 30,000; and the real API server's Indexed Job limits, both ways: a one-index-per-
shard Job (completions 30,000 with backoffLimitPerIndex) is accepted, completions above
100,000 with parallelism above 10,000 are refused. Measured figures are printed; one
run here (2 shared cores, load ~25 from other jobs): 189 s for the 30,000 shards (4 pods,
7,500 shards each), operator peak RSS 113 MB, CaptionJob object 2,560 bytes, test process
peak 448 MB; the file takes ~4 min with the control plane's start (58 s of CPU).
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sailvl.caption import shards as sh
from sailvl.caption.claims import Claimer
from sailvl.caption.main import aggregate
from sailvl.data.manifest import MANIFEST, Manifest, ShardInfo
from sailvl.storage.local import LocalStore
from tests.bench.bench_operator import start_operator, stop_operator
from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.controlplane.harness import ControlPlane
from tests.cluster.test_operator import crds  # noqa: F401 - the CRDs fixture

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
SHARDS, PODS = 30_000, 4
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@pytest.fixture
def work() -> Iterator[Path]:
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base, prefix="sailvl-scale-") as d:
        yield Path(d)


def synthetic_input(root: Path) -> None:
    infos = [ShardInfo(path=f"shards/{i:05d}.parquet", samples=1, bytes=1) for i in range(SHARDS)]
    LocalStore(str(root / "in")).write_bytes(MANIFEST, Manifest(shards=infos).to_json().encode())


def tiny_output() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ["x"], "caption": ["a caption"]}), buf)
    return buf.getvalue()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    """Apply; kubectl's discovery cache, filled before the CRDs existed, is refreshed by
    `api-resources` (seen here: apply kept answering "no matches for kind" for 60 s)."""

    def attempt() -> bool:
        proc = kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)
        if proc.returncode and "no matches for kind" not in proc.stderr:
            raise AssertionError(proc.stderr)
        if proc.returncode:
            kubectl("api-resources", "--api-group=sailvl.io", check=False)
        return proc.returncode == 0

    wait_for(attempt, timeout=60, what=f"kubectl apply {obj['kind']}", interval=2)


class Pods:
    """Plays the caption pods: one thread per Running pod index, claiming and committing
    shards until the claimer says the pod is done, then the pod exits 0."""

    def __init__(self, kubectl: Kubectl, ns: str, root: Path) -> None:
        self.kubectl, self.ns = kubectl, ns
        self.out = LocalStore(str(root / "out"))
        self.in_store = LocalStore(str(root / "in"))
        self.keys = sh.shard_keys(self.in_store)
        self.data = tiny_output()
        self.started: set[int] = set()
        self.done: dict[int, int] = {}
        self.threads: list[threading.Thread] = []

    def committed(self) -> set[str]:
        return sh.indexed_outputs(self.out)

    def play(self, index: int, pod: str) -> None:
        claimer = Claimer(self.out, self.keys, self.committed, done=self.out.exists,
                          index=index, count=PODS, poll_s=0.2)  # fmt: skip
        n = 0
        while (claim := claimer.next()) is not None:
            facts = sh.shard_facts(self.data, rows=1, captioned=1, gen=claim.gen)
            n += sh.commit_shard(self.out, claim.key, self.data, facts)
        snap = {"assignment": "dynamic", "shards_total": len(self.keys), "shards_done": n,
                "shards_failed": 0, "samples": n, "samples_per_second": 0.0}  # fmt: skip
        self.out.write_bytes(f"_progress/pod-{index}.json", json.dumps(snap).encode())
        sh.write_output_manifest(self.in_store, self.out, self.keys)
        self.report()
        self.done[index] = n
        self.kubectl.set_pod_exit(pod, self.ns, 0)

    def report(self) -> None:
        status = aggregate(self.out)
        body = json.dumps({"status": status})
        self.kubectl("patch", "captionjob", "scale", "-n", self.ns, "--subresource=status",
                     "--type=merge", "-p", body)  # fmt: skip

    def step(self) -> None:
        for pod in self.kubectl.pods(self.ns, "batch.kubernetes.io/job-name=scale-0"):
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            index = int(pod["metadata"]["annotations"][INDEX_ANNOTATION])
            if index not in self.started:
                self.started.add(index)
                t = threading.Thread(target=self.play, args=(index, pod["metadata"]["name"]))
                t.start()
                self.threads.append(t)


@pytest.mark.usefixtures("crds")
def test_caption_job_of_30000_shards(
    cluster: ControlPlane, kubectl: Kubectl, namespace: str, work: Path
) -> None:
    t0 = time.monotonic()
    synthetic_input(work)
    # as in production (`kopf run`, its own process), the operator benchmark's launcher
    op = start_operator(cluster.kubeconfig, namespace, work / "operator.log", None)
    try:
        apply(
            kubectl,
            {
                "apiVersion": "sailvl.io/v1alpha1",
                "kind": "CaptionJob",
                "metadata": {"name": "scale", "namespace": namespace},
                "spec": {
                    "input": f"file://{work}/in",
                    "output": f"file://{work}/out",
                    "model": {"uri": "file:///models/captioner"},
                    "backend": "transformers",
                    "accelerator": "cpu",
                    "devicesPerPod": 0,
                    "parallelism": PODS,
                },
            },
        )
        job = wait_for(
            lambda: kubectl.get("job", "scale-0", namespace), timeout=60, what="Job scale-0"
        )
        assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (PODS, PODS)
        assert job["spec"]["backoffLimitPerIndex"] == 2 and job["spec"]["maxFailedIndexes"] == PODS
        pods = Pods(kubectl, namespace, work)
        deadline = time.monotonic() + 420
        while len(pods.done) < PODS:
            assert time.monotonic() < deadline, f"pods done {sorted(pods.done)}"
            pods.step()
            time.sleep(1)
        for t in pods.threads:
            t.join(60)
        wait_for(
            lambda: (
                (kubectl.get("captionjob", "scale", namespace) or {}).get("status", {}).get("phase")
                == "Succeeded"
            ),
            timeout=120,
            what="CaptionJob Succeeded",
        )
        rss = peak_rss_mb(op.pid)
    finally:
        stop_operator(op)
    obj = kubectl.get("captionjob", "scale", namespace) or {}
    status = obj["status"]
    size = len(json.dumps(obj))
    out = LocalStore(str(work / "out"))
    manifest = Manifest.from_json(out.read_bytes(MANIFEST))
    print(
        f"\n30,000-shard CaptionJob: {time.monotonic() - t0:.0f} s; shards per pod "
        f"{[pods.done[k] for k in sorted(pods.done)]}; operator peak RSS {rss:.0f} MB; "
        f"CaptionJob object {size} bytes; test process peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    assert sum(pods.done.values()) == SHARDS  # exactly once across pods
    assert len(manifest.shards) == SHARDS and sum(s.samples for s in manifest.shards) == SHARDS
    assert (status["shardsTotal"], status["shardsDone"], status["shardsFailed"]) == (
        SHARDS,
        SHARDS,
        0,
    )
    assert size < 16 * 1024, f"CaptionJob object grew to {size} bytes"
    assert rss < 250, f"operator peak RSS {rss:.0f} MB over the 250 MB goal"


def dry_run_job(
    kubectl: Kubectl, ns: str, completions: int, parallelism: int, max_failed: int
) -> subprocess.CompletedProcess[str]:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "limits", "namespace": ns},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            "backoffLimitPerIndex": 2,
            "maxFailedIndexes": max_failed,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}
            },
        },
    }
    return kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(job), check=False)


def test_indexed_job_limits_of_the_real_api_server(kubectl: Kubectl, namespace: str) -> None:
    """Why shards are not Job indexes past 100,000, checked against the API server."""
    # one index per shard at the paper's scale: allowed (completions <= 100,000)
    assert dry_run_job(kubectl, namespace, SHARDS, 256, SHARDS).returncode == 0
    # above 100,000 completions, backoffLimitPerIndex caps parallelism and maxFailedIndexes
    refused = dry_run_job(kubectl, namespace, 100_001, 10_001, 10_001)
    assert refused.returncode != 0
    assert "must be less than or equal to 10000 when completions are above 100000" in refused.stderr
    # the CaptionJob's own largest Job (parallelism 10,000, the CRD's maximum) is accepted
    assert dry_run_job(kubectl, namespace, 10_000, 10_000, 10_000).returncode == 0
