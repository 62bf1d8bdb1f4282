"""End to end through real pods: the operator from its chart and image, a Curriculum of
the demo's shape on the real node, data and checkpoints on SeaweedFS, a killed pod and a
killed process, a configuration error, Pod Security `restricted`.

Set-up (module fixtures; tests/cluster/controlplane/clusterdemo.py, shared with
`make cluster-demo`): the control plane with the real node; SeaweedFS bound to the pod
network's gateway (reached by the pods and this process, by nothing beyond the
machine); `helm install` of the chart with the locally built images into a `restricted`
namespace; a `restricted` test namespace with the storage Secret; the synthetic data,
benchmarks and initial tiny model written to S3.

- `test_config_error_fails_the_stage_at_once`: a TrainStage whose dataset does not
  exist: `sailvl train` exits 2 in its pod, the stage is Failed with ConfigError and the
  job's own message, one Job, no restart.
- `test_curriculum_through_real_pods_survives_a_deleted_pod_and_a_killed_process`:
  caption -> a 2-pod training stage (one process per pod, DeepSpeed over gloo between
  the pods, rank 0 found through the headless Service) -> its eval and gate -> a second
  stage from the first stage's final checkpoint -> a final eval, to Succeeded; progress
  written by the pods through the job ServiceAccount and shown by `kubectl get sailvl`
  while the stage runs. During the first stage one pod is deleted, and after the group
  restart the training process inside the other pod's container is SIGKILLed: each time
  the operator restarts the group, which resumes from the newest checkpoint, and the
  stage's id log (one S3 object per step and rank, written by the workers) shows every
  sample consumed exactly once. Deleting the Curriculum removes every pod.

Every wait on pods is generous (the machine is small and shared); nothing asserts a time.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane import clusterdemo as demo
from tests.cluster.controlplane import hoststate
from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.controlplane.harness import ControlPlane
from tests.cluster.test_realnode import real  # noqa: F401 - the module's real node

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]

STEPS, BATCH, INTERVAL = 24, 2, 2  # stage 1: steps x global batch; checkpoint interval
SIZES = {"raw": 8, "pretrain": 120, "sft": 12, "bench": 9}  # pretrain >= 2 x samples
JOB_SA = "sailvl-job"
POD_WAIT = 900  # seconds: pods import torch and DeepSpeed on two shared cores


@pytest.fixture(scope="module")
def cp(real: tuple[ControlPlane, hoststate.HostState]) -> ControlPlane:  # noqa: F811
    return real[0]


@pytest.fixture(scope="module")
def k(cp: ControlPlane) -> Kubectl:
    assert cp.kubectl is not None
    return cp.kubectl


@pytest.fixture(scope="module")
def s3(cp: ControlPlane) -> Iterator[Any]:
    assert cp.node is not None
    server = demo.start_pod_s3(cp.node.config.gateway)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def operator_pod(cp: ControlPlane, k: Kubectl) -> dict[str, Any]:
    return demo.install_operator(cp.kubeconfig, k)


@pytest.fixture(scope="module")
def run(k: Kubectl, s3: Any, operator_pod: dict[str, Any]) -> tuple[str, str]:
    """(namespace, run folder URI) with the Secret and the data in place."""
    ns = "e2e"
    demo.restricted_namespace(k, ns)
    k.apply(demo.storage_secret(ns, s3))
    uri = f"s3://{s3.new_bucket('e2e')}/run"
    demo.write_assets(s3, uri, SIZES)
    return ns, uri


def status(k: Kubectl, kind: str, name: str, ns: str) -> dict[str, Any]:
    return dict((k.get(kind, name, ns) or {}).get("status") or {})


def job_names(k: Kubectl, ns: str, owner: str) -> list[str]:
    items = k.json("get", "jobs", "-n", ns, "-l", f"sailvl.io/name={owner}")["items"]
    return sorted(j["metadata"]["name"] for j in items)


def test_config_error_fails_the_stage_at_once(
    k: Kubectl, run: tuple[str, str], operator_pod: dict[str, Any]
) -> None:
    ns, uri = run
    k.apply({
        "apiVersion": "sailvl.io/v1alpha1", "kind": "TrainStage",
        "metadata": {"name": "bad-data", "namespace": ns},
        "spec": {
            "preset": "pretrain-alignment",
            "model": {"preset": "tiny", "init": f"{uri}/models/tiny-init"},
            "data": [{"uri": f"{uri}/data/missing"}], "budget": {"steps": 2},
            "globalBatch": 2, "maxTiles": 4, "accelerator": "cpu", "nodes": 1,
            "devicesPerNode": 1, "maxRestarts": 3, "output": f"{uri}/bad-data",
            "storageSecret": {"name": demo.STORAGE_SECRET},
        },
    })  # fmt: skip

    def failed() -> dict[str, Any] | None:
        st = status(k, "trainstage", "bad-data", ns)
        return st if st.get("phase") == "Failed" else None

    st = wait_for(failed, timeout=POD_WAIT, what="bad-data Failed", interval=2)
    cond = next(c for c in st["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "ConfigError", cond
    assert "data[0]" in st["message"] and f"{uri}/data/missing" in st["message"], st
    assert st.get("restarts", 0) == 0
    assert job_names(k, ns, "bad-data") == ["bad-data-0"]
    (pod,) = k.pods(ns, "sailvl.io/name=bad-data")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 2, term
    assert pod["spec"]["nodeName"] == "real-0"


def e2e_curriculum(ns: str, uri: str) -> dict[str, Any]:
    """The demo Curriculum cut down: caption, a 2-pod stage with an eval and a gate, a
    second stage (caption output + pretraining data), a final eval."""
    doc = demo.cluster_curriculum("e2e", ns, uri)
    spec = doc["spec"]
    spec["caption"]["generation"] = {"maxNewTokens": 4}
    spec["defaults"].update(
        maxRestarts=3,
        checkpoint={"intervalSteps": INTERVAL, "keep": 2},
        # The workers' id log (sailvl/train/loop.py), on S3: it outlives killed pods.
        template={"env": [{"name": "SAILVL_TRAIN_ID_LOG", "value": f"{uri}/ids"}]},
    )
    first, second = spec["stages"][0], spec["stages"][1]
    first.update(
        data=[{"uri": f"{uri}/data/pretrain"}],
        budget={"steps": STEPS},
        globalBatch=BATCH,
        eval={"benchmarks": [{"name": "synth-ocr"}]},
        gate={"metric": "synth-ocr", "threshold": 0.0},
    )
    second.update(
        data=[{"fromStep": "caption", "weight": 0.5}, {"uri": f"{uri}/data/pretrain"}],
        budget={"steps": 3},
        globalBatch=4,
    )
    second.pop("eval", None)
    spec["stages"] = [first, second]
    spec["evalGeneration"] = {"maxNewTokens": 4, "batchSize": 16}
    spec["finalEval"] = {
        "benchmarks": [{"name": "synth-ocr"}, {"name": "heldout-yesno", "scorer": "pope"}]
    }
    return doc


def _log_keys(s3: Any, uri: str) -> list[str]:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    pages = (
        s3.client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=f"{prefix}/ids/")
    )
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def logged_steps(s3: Any, uri: str) -> list[tuple[int, str]]:
    """(step, host) of every id log object (from the keys alone: `rank-<r>/<step>-<host>-
    <pid>.json`, sailvl/train/loop.py), cheap enough to poll."""
    out = []
    for key in _log_keys(s3, uri):
        m = re.search(r"/rank-\d+/(\d{8})-(.+)-\d+\.json$", key)
        assert m, key
        out.append((int(m.group(1)), m.group(2)))
    return out


def id_log(s3: Any, uri: str) -> list[dict[str, Any]]:
    """Every row of the id log under `uri`/ids (one object per step, rank and pod)."""
    bucket = uri[len("s3://") :].partition("/")[0]
    client = s3.client()
    return [
        json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        for key in _log_keys(s3, uri)
    ]


def attempt_of(row: dict[str, Any], stage: str) -> int:
    """The restart attempt of a row, from the pod's host name `<stage>-<attempt>-<index>`."""
    m = re.fullmatch(rf"{re.escape(stage)}-(\d+)-\d+", row["host"])
    assert m, row["host"]
    return int(m.group(1))


KILL_WORKER = textwrap.dedent(
    """
    import os, signal
    for pid in (p for p in os.listdir("/proc") if p.isdigit() and p != "1"):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
        except OSError:
            continue
        if any(v.startswith(b"LOCAL_RANK=") for v in env):  # a torchrun worker
            os.kill(int(pid), signal.SIGKILL)
            print(pid)
    """
)


def failed_logs(k: Kubectl, ns: str) -> str:
    """The last lines of every failed pod's log, for a failure message."""
    out = []
    for pod in k.pods(ns):
        if (pod.get("status") or {}).get("phase") == "Failed":
            name = pod["metadata"]["name"]
            logs = k("logs", name, "-n", ns, "--tail=25", check=False)
            out.append(f"--- {name}\n{logs.stdout}{logs.stderr}")
    return "\n".join(out)


def stage_pod(k: Kubectl, ns: str, stage: str, attempt: int, index: int) -> dict[str, Any] | None:
    for pod in k.pods(ns, f"batch.kubernetes.io/job-name={stage}-{attempt}"):
        ann = pod["metadata"].get("annotations") or {}
        running = (pod.get("status") or {}).get("phase") == "Running"
        if ann.get("batch.kubernetes.io/job-completion-index") == str(index) and running:
            return dict(pod)
    return None


def test_curriculum_through_real_pods_survives_a_deleted_pod_and_a_killed_process(
    k: Kubectl, s3: Any, run: tuple[str, str], operator_pod: dict[str, Any], tmp_path: Path
) -> None:
    ns, uri = run
    stage, stage2 = "e2e-pretrain-alignment", "e2e-pretrain-advance"
    # The operator: a pod from its image on the real node, as the chart's ServiceAccount.
    assert operator_pod["spec"]["serviceAccountName"] == demo.RELEASE
    assert operator_pod["spec"]["nodeName"] == "real-0"
    container = operator_pod["spec"]["containers"][0]
    assert container["image"] == ":".join(demo.OPERATOR_IMAGE)
    assert not any("KUBECONFIG" in e.get("name", "") for e in container.get("env", []))

    k.apply(e2e_curriculum(ns, uri))

    # Kill 1: delete pod 1 of the first attempt once it has committed a checkpoint.
    # Kill 2: SIGKILL the training process inside pod 0 of the second attempt once it
    # has committed a checkpoint of its own. Meanwhile `kubectl get sailvl` must show
    # the stage's progress as the pods report it.
    shown: str | None = None
    kills: list[int] = []  # the last step logged by the attempt that was killed

    def progress() -> bool:
        nonlocal shown
        st, cst = status(k, "trainstage", stage, ns), status(k, "curriculum", "e2e", ns)
        if cst.get("phase") == "Failed":
            raise AssertionError(
                f"Curriculum e2e failed: {cst.get('message')}\n{failed_logs(k, ns)}"
            )
        if st.get("phase") == "Succeeded" or cst.get("phase") == "Succeeded":
            return True
        if shown is None and st.get("phase") == "Running" and st.get("step"):
            out = k("get", "sailvl", "-n", ns).stdout
            line = next(
                x for x in out.splitlines() if x.startswith(f"trainstage.sailvl.io/{stage}")
            )
            if "Running" in line and re.search(rf"\s{st['step']}\s", line):
                shown = out
        if len(kills) == 2:
            return False
        attempt = len(kills)
        mine = [
            step for step, host in logged_steps(s3, uri) if host.startswith(f"{stage}-{attempt}-")
        ]
        if not mine:
            return False
        # The attempt's first own checkpoint (resume point + INTERVAL) is committed once
        # the step after it is logged: saving is synchronous across the group.
        if max(mine) >= min(mine) + INTERVAL:
            assert max(mine) < STEPS, f"stage {stage} finished before kill {attempt + 1}"
            pod = stage_pod(k, ns, stage, attempt, 1 - attempt)
            if pod is None:
                return False
            name = pod["metadata"]["name"]
            if attempt == 0:
                k("delete", "pod", name, "-n", ns, "--wait=false")
            else:
                done = k("exec", name, "-n", ns, "--", "python", "-c", KILL_WORKER, timeout=120)
                assert done.stdout.split(), f"no torchrun worker in {name}: {done.stderr}"
            kills.append(max(mine))
        return False

    wait_for(progress, timeout=3 * POD_WAIT, what=f"{stage} with two kills", interval=1)
    assert len(kills) == 2, f"the stage ended before both kills: {kills}"

    def finished() -> dict[str, Any] | None:
        st = status(k, "curriculum", "e2e", ns)
        return st if st.get("phase") in ("Succeeded", "Failed") else None

    cur = wait_for(finished, timeout=3 * POD_WAIT, what="Curriculum e2e finished", interval=5)
    rows = {r["name"]: r for r in cur["steps"]}
    assert cur["phase"] == "Succeeded", f"{json.dumps(cur, indent=1)}\n{failed_logs(k, ns)}"
    assert list(rows) == [
        "caption", "pretrain-alignment", "pretrain-alignment-eval", "pretrain-advance",
        "final-eval",
    ]  # fmt: skip
    assert {r["phase"] for r in rows.values()} == {"Succeeded"}, rows

    # Progress reported by the pods through the job ServiceAccount.
    assert shown is not None, "kubectl get sailvl never showed the running stage's step"
    st1 = status(k, "trainstage", stage, ns)
    assert st1["restarts"] == 2, st1
    assert (st1["step"], st1["samples"]) == (STEPS, STEPS * BATCH), st1
    assert st1["tokens"] > 0 and st1["loss"] > 0, st1
    assert st1["finalCheckpoint"] == f"{uri}/pretrain-alignment/final"
    assert job_names(k, ns, stage) == [f"{stage}-2"]  # earlier attempts' Jobs removed
    spec2 = (k.get("trainstage", stage2, ns) or {})["spec"]
    assert spec2["model"]["init"] == f"{uri}/pretrain-alignment/final"
    assert spec2["data"][0]["uri"] == f"{uri}/data/captions"  # the caption step's output
    assert status(k, "trainstage", stage2, ns)["step"] == 3
    cap = status(k, "captionjob", "e2e-caption", ns)
    assert cap["shardsDone"] == cap["shardsTotal"] >= 1 and cap["samples"] >= 1, cap
    assert "synth-ocr" in rows["pretrain-alignment-eval"]["scores"]
    assert {"synth-ocr", "heldout-yesno"} <= set(rows["final-eval"]["scores"])

    # `make cluster-demo`'s report, from these statuses: the same summary as `make demo`.
    summary = demo.report(k, ns, "e2e", tmp_path).read_text()
    for step, kind in (("pretrain-alignment", "TrainStage"), ("final-eval", "EvalSuite")):
        assert f"| {step} | {kind} | Succeeded |" in summary, summary
    assert "**Result:** Succeeded" in summary, summary

    # Exactly once across the kills: each attempt resumed from the newest checkpoint
    # committed before its predecessor was killed, and over the stage (the last attempt
    # to log a step wins) every sample id appears once.
    log = [r for r in id_log(s3, uri) if r["name"] == stage]
    by_attempt: dict[int, list[dict[str, Any]]] = {}
    for r in log:
        by_attempt.setdefault(attempt_of(r, stage), []).append(r)
    assert sorted(by_attempt) == [0, 1, 2], sorted(by_attempt)
    for attempt in (1, 2):
        resumed_from = min(r["step"] for r in by_attempt[attempt]) - 1
        last = max(r["step"] for r in by_attempt[attempt - 1])
        assert resumed_from % INTERVAL == 0 and resumed_from > 0, (attempt, resumed_from)
        newest = (last - 1) // INTERVAL * INTERVAL  # committed: a later step was logged
        assert newest <= resumed_from <= last, (attempt, resumed_from, last)
        assert last >= kills[attempt - 1]
    final: dict[tuple[int, int], list[str]] = {}
    for attempt in (0, 1, 2):
        for r in by_attempt[attempt]:
            final[(r["step"], r["rank"])] = r["ids"]
    assert sorted({s for s, _ in final}) == list(range(1, STEPS + 1))
    assert {rank for _, rank in final} == {0, 1}
    ids = [i for v in final.values() for i in v]
    assert len(ids) == STEPS * BATCH == len(set(ids)), ids
    for attempt in (1, 2):  # a replayed step saw exactly the samples it saw before
        before = {(r["step"], r["rank"]): r["ids"] for r in by_attempt[attempt - 1]}
        for r in by_attempt[attempt]:
            assert r["ids"] == before.get((r["step"], r["rank"]), r["ids"]), r
    # Pod Security `restricted` admitted every job pod; each ran on the real node as the
    # job ServiceAccount.
    events = k.json("get", "events", "-n", ns)["items"]
    refused = [e["message"] for e in events if e.get("reason") == "FailedCreate"]
    assert not refused, refused
    pods = k.pods(ns, "app.kubernetes.io/part-of=sailvl")
    assert {p["spec"]["nodeName"] for p in pods} == {"real-0"}
    assert {p["spec"]["serviceAccountName"] for p in pods} == {JOB_SA}

    # Deleting the Curriculum removes every pod (children, their Jobs, their pods).
    k("delete", "curriculum", "e2e", "-n", ns, "--wait=false")

    def gone() -> bool:
        jobs = k.json("get", "jobs", "-n", ns)["items"]
        left = [o["metadata"]["name"] for o in k.pods(ns) + jobs]
        return not [n for n in left if n.startswith("e2e-")]

    wait_for(gone, timeout=POD_WAIT, what="every pod and Job of the Curriculum gone", interval=2)
    assert not [x for x in k.json("get", "sailvl", "-n", ns)["items"]
                if x["metadata"]["name"].startswith("e2e")]  # fmt: skip
