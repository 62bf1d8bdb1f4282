"""Pure helpers of the operator benchmark: the curriculum it applies, the API server's
audit policy and log reader, the operator process sampler, and the latency arithmetic.

Who wrote what: the audit log records each request's ``userAgent``. The operator's two
clients are kopf's aiohttp session (``kopf/<version>``) and the ``kubernetes`` client
of ``sailvl_operator.k8s`` (``OpenAPI-Generator/...``); the benchmark's own client
sets :data:`opbench_probe.BENCH_USER_AGENT`; the control plane's components send their
own names (kube-controller-manager, kube-scheduler, kwok). Leases, nodes and watches
are not logged at all, which keeps the log (and its cost to the API server) small.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import psutil

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/")

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: None
  resources:
  - {group: coordination.k8s.io, resources: [leases]}
  - {group: "", resources: [nodes, nodes/status]}
- level: None
  verbs: [watch]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: Metadata
  verbs: [get, list]
  resources:
  - {group: sailvl.io}
  - {group: batch, resources: [jobs]}
- level: None
"""


def audit_args(folder: Path) -> list[str]:
    """kube-apiserver flags that write the audit log to ``folder/audit.log``."""
    policy = folder / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={folder / 'audit.log'}",
        "--audit-log-maxsize=0",
    ]


def is_operator(agent: str) -> bool:
    return agent.startswith(OPERATOR_AGENTS)


def audit_counts(log: Path, start: float, end: float) -> dict[str, Counter[str]]:
    """Requests completed in [start, end) by who: ``operator-writes`` /
    ``operator-reads`` keyed ``verb resource[/sub]``, ``other-writes`` keyed by agent."""
    out: dict[str, Counter[str]] = {
        "operator-writes": Counter(),
        "operator-reads": Counter(),
        "other-writes": Counter(),
    }
    with log.open() as fh:
        for line in fh:
            ev = json.loads(line)
            ts = datetime.fromisoformat(ev["stageTimestamp"].replace("Z", "+00:00")).timestamp()
            if not start <= ts < end:
                continue
            ref = ev.get("objectRef") or {}
            what = f"{ev['verb']} {ref.get('resource', '?')}"
            if ref.get("subresource"):
                what += f"/{ref['subresource']}"
            agent = ev.get("userAgent") or ""
            write = ev["verb"] in WRITE_VERBS
            if is_operator(agent):
                out["operator-writes" if write else "operator-reads"][what] += 1
            elif write:
                out["other-writes"][agent.split(" ")[0].split("/")[0] or "?"] += 1
    return out


class ProcSampler:
    """CPU seconds (user + system, children included) and RSS of one process, sampled."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_sampled = 0
        self._stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak_sampled = max(self.peak_sampled, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def cpu_seconds(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def peak_rss(self) -> int:
        """The kernel's high-water mark (VmHWM), else the sampled peak."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return self.peak_sampled

    def close(self) -> None:
        self._stop.set()


def step_names(stages: int) -> list[str]:
    """Step order of :func:`curriculum`: caption, s<i> and s<i>-eval, final-eval."""
    out = ["caption"]
    for i in range(stages):
        out += [f"s{i}", f"s{i}-eval"]
    return [*out, "final-eval"]


PRESETS = (
    "pretrain-alignment",
    "pretrain-advance",
    "sft-knowledge",
    "sft-instruction",
    "sft-preference",
)


def curriculum(name: str, ns: str, stages: int) -> dict[str, Any]:
    """A small Curriculum: caption, ``stages`` two-node stages each with a one-benchmark
    eval (no gate, so no scores need reporting), and a one-benchmark final eval."""
    rows = []
    for i in range(stages):
        rows.append(
            {
                "name": f"s{i}",
                "preset": PRESETS[i % len(PRESETS)],
                "data": [{"fromStep": "caption"}] if i == 0 else [{"uri": f"s3://data/d{i}"}],
                "budget": {"steps": 4},
                "globalBatch": 16,
                "eval": {"benchmarks": [{"name": "synth-ocr"}]},
            }
        )
    return {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "Curriculum",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "storage": {"uri": f"s3://runs/{name}"},
            "model": {"preset": "tiny"},
            "defaults": {"accelerator": "nvidia", "nodes": 2, "devicesPerNode": 4},
            "caption": {
                "input": "s3://data/raw",
                "output": f"s3://runs/{name}/captions",
                "model": {"uri": "s3://models/captioner"},
                "parallelism": 1,
            },
            "stages": rows,
            "evalDataRoot": "s3://bench",
            "finalEval": {"benchmarks": [{"name": "synth-ocr"}]},
        },
    }


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    max: float


def summarize(values: list[float]) -> Summary | None:
    if not values:
        return None
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=20, method="inclusive") if len(ordered) > 1 else ordered
    p95 = q[18] if len(ordered) > 1 else ordered[0]
    return Summary(len(ordered), statistics.median(ordered), p95, ordered[-1])


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class PathCalls:
    """The operator's requests on one hand-over's path, from the audit log."""

    calls: int  # operator requests about this Curriculum between Job done and the create
    server_s: float  # the API server's time in them (received -> response complete)
    wait_s: float  # Job controller's Complete write -> the operator's first request


def handover_paths(log: Path, order: list[str]) -> list[PathCalls]:
    """Per hand-over (step k of Curriculum ``cNNN`` -> step k+1): from the Job
    controller's last write of step k's Job status (its ``Complete``) to the operator's
    create of step k+1's child, the operator's requests that name the Curriculum or one
    of its children (reads by name or label selector, writes). Shows where a hand-over
    waits: on the API server (``server_s``), before the operator's first request
    (``wait_s``: watch delivery and the handler's queue), or in the operator itself."""
    job_done: dict[str, float] = {}
    created: dict[str, float] = {}
    ops: dict[str, list[tuple[float, float]]] = {}
    with log.open() as fh:
        for line in fh:
            ev = json.loads(line)
            ref = ev.get("objectRef") or {}
            name, agent = ref.get("name") or "", ev.get("userAgent") or ""
            got = _ts(ev["requestReceivedTimestamp"]), _ts(ev["stageTimestamp"])
            job_writer = "job-controller" in (ev.get("user") or {}).get("username", "")
            if ref.get("resource") == "jobs" and ref.get("subresource") == "status" and job_writer:
                job_done[name] = got[1]
            if not is_operator(agent):
                continue
            if ev["verb"] == "create" and ref.get("resource") in CHILD_PLURALS:
                created.setdefault(name, got[0])
            cur = _curriculum_of(name) or _curriculum_of(unquote(ev.get("requestURI") or ""))
            if cur:
                ops.setdefault(cur, []).append(got)
    out = []
    for cur, reqs in ops.items():
        for k in range(len(order) - 1):
            child, nxt = f"{cur}-{order[k]}", f"{cur}-{order[k + 1]}"
            ends = [t for j, t in job_done.items() if _job_of_child(j, child)]
            if not ends or nxt not in created:
                continue
            t0, t1 = max(ends), created[nxt]
            on_path = sorted(r for r in reqs if t0 <= r[0] <= t1)
            wait = (on_path[0][0] if on_path else t1) - t0
            out.append(PathCalls(len(on_path), sum(d - r for r, d in on_path), wait))
    return out


CHILD_PLURALS = frozenset({"captionjobs", "trainstages", "evalsuites"})


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _curriculum_of(text: str) -> str | None:
    """The bench's Curriculum name (``c`` and three digits) in a name or request URI."""
    found = _CURRICULUM_RE.search(text)
    return found.group(0) if found else None


_CURRICULUM_RE = re.compile(r"(?<![A-Za-z0-9])c[0-9]{3}(?![0-9])")


def _job_of_child(job: str, child: str) -> bool:
    """Whether a Job belongs to a child: ``<child>`` or ``<child>-<attempt>``."""
    rest = job[len(child) :] if job.startswith(child) else None
    return rest is not None and (rest == "" or (rest[0] == "-" and rest[1:].isdigit()))
