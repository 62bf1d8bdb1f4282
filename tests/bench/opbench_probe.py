"""Watch-side instruments of the operator benchmark: what happened when, and the pods'
fate.

:class:`Recorder` runs one list+watch thread per resource type (Jobs, the three child
kinds, Curricula) in the benchmark namespace and stamps every first sighting with this
process's clock (``time.time()``), next to the server's own timestamps. Both ends of a
latency (a Job's ``Complete`` condition, the next child's ADDED event) are seen through
the same kind of watch, so the watch delivery delay cancels out and the figure keeps
sub-second resolution; the server timestamps (RFC 3339, whole seconds) are kept as a
cross-check.

:class:`PodDriver` plays the job pods: every Running pod of the operator's Jobs gets
``sailvl.io/kwok-exit=0`` after ``hold`` seconds (KWOK then ends it with exit code 0),
and the moment of that patch is kept per Job ("the test marked the last pod"). It also
stamps, per Job, the first sighting of each pod's exit (phase ``Succeeded``) on its pod
watch: the last of them to the Job's ``Complete`` on the Job watch is the reaction of
Kubernetes' own Job controller, the floor under any operator's hand-over.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

EXIT_ANNOTATION = "sailvl.io/kwok-exit"
PART_OF = "app.kubernetes.io/part-of=sailvl"
BENCH_USER_AGENT = "sailvl-bench"  # the audit log tells the bench's own writes apart


def parse_ts(value: str | None) -> float | None:
    """RFC 3339 (``...Z``) to a POSIX timestamp; None stays None."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Seen:
    """First sightings of one object (bench clock) and its server timestamps."""

    added: float | None = None  # first event of the object
    created: float | None = None  # metadata.creationTimestamp
    completed: float | None = None  # first event showing the Job Complete=True
    completed_server: float | None = None  # that condition's lastTransitionTime
    phase: str | None = None  # status.phase (custom resources)
    labels: dict[str, str] = field(default_factory=dict)


class Recorder:
    """Watches Jobs, CaptionJobs, TrainStages, EvalSuites and Curricula in one namespace."""

    PLURALS = ("captionjobs", "trainstages", "evalsuites", "curricula")

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.jobs: dict[str, Seen] = {}
        self.custom: dict[str, dict[str, Seen]] = {p: {} for p in self.PLURALS}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        batch, custom = client.BatchV1Api(self.api), client.CustomObjectsApi(self.api)
        targets: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
            ("jobs", batch.list_namespaced_job, (self.ns,))
        ]
        for plural in self.PLURALS:
            args = ("sailvl.io", "v1alpha1", self.ns, plural)
            targets.append((plural, custom.list_namespaced_custom_object, args))
        for name, fn, args in targets:
            th = threading.Thread(target=self._loop, args=(name, fn, args), daemon=True)
            th.start()
            self.threads.append(th)

    def _loop(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        rv: str | None = None
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                kw = {"timeout_seconds": 30, "resource_version": rv} if rv else {}
                kw.setdefault("timeout_seconds", 30)
                for ev in w.stream(fn, *args, **kw):
                    obj = ev["object"]
                    if not isinstance(obj, dict):
                        obj = self.api.sanitize_for_serialization(obj)
                    rv = obj["metadata"].get("resourceVersion") or rv
                    self._note(name, obj, time.time())
                    if self.stop.is_set():
                        break
            except ApiException as err:
                if err.status == 410:
                    rv = None  # expired: list again (first sightings are kept)
                else:
                    time.sleep(0.5)
            except Exception:  # a dropped connection: watch again from the last rv
                time.sleep(0.5)

    def _note(self, name: str, obj: dict[str, Any], now: float) -> None:
        meta = obj["metadata"]
        with self.lock:
            table = self.jobs if name == "jobs" else self.custom[name]
            seen = table.setdefault(meta["name"], Seen())
            if seen.added is None:
                seen.added = now
                seen.created = parse_ts(meta.get("creationTimestamp"))
                seen.labels = dict(meta.get("labels") or {})
            st = obj.get("status") or {}
            if name == "jobs":
                for cond in st.get("conditions") or []:
                    complete = cond.get("type") == "Complete" and cond.get("status") == "True"
                    if complete and seen.completed is None:
                        seen.completed = now
                        seen.completed_server = parse_ts(cond.get("lastTransitionTime"))
            else:
                seen.phase = st.get("phase") or seen.phase

    def phases(self, plural: str) -> dict[str, str | None]:
        with self.lock:
            return {k: v.phase for k, v in self.custom[plural].items()}

    def children_count(self) -> int:
        with self.lock:
            return sum(len(self.custom[p]) for p in self.PLURALS if p != "curricula")

    def close(self) -> None:
        self.stop.set()


def _job_of(pod: Any) -> str:
    labels = pod.metadata.labels or {}
    return str(labels.get("batch.kubernetes.io/job-name") or labels.get("job-name", ""))


class PodDriver:
    """Marks every Running sailvl pod to exit 0 after ``hold`` seconds."""

    def __init__(self, api: client.ApiClient, namespace: str, hold: float) -> None:
        self.core = client.CoreV1Api(api)
        self.api, self.ns, self.hold = api, namespace, hold
        self.marked_at: dict[str, float] = {}  # job name -> last pod marked
        self.exited_at: dict[str, float] = {}  # job name -> last pod seen Succeeded
        self._exited: set[str] = set()
        self.pods_marked = 0
        self._queue: list[tuple[float, str, str]] = []  # (due, pod, job)
        self._queued: set[str] = set()
        self._cv = threading.Condition()
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._watch, daemon=True).start()
        threading.Thread(target=self._mark, daemon=True).start()

    def _watch(self) -> None:
        rv: str | None = None
        while not self.stop.is_set():
            try:
                kw: dict[str, Any] = {"label_selector": PART_OF, "timeout_seconds": 30}
                if rv:
                    kw["resource_version"] = rv
                for ev in watch.Watch().stream(self.core.list_namespaced_pod, self.ns, **kw):
                    pod = ev["object"]
                    rv = pod.metadata.resource_version or rv
                    if ev["type"] != "DELETED":
                        self._exit_seen(pod, time.time())
                        self._consider(pod)
                    if self.stop.is_set():
                        break
            except ApiException as err:
                rv = None if err.status == 410 else rv
                time.sleep(0.2)
            except Exception:
                time.sleep(0.5)

    def _exit_seen(self, pod: Any, now: float) -> None:
        if (pod.status.phase if pod.status else None) != "Succeeded":
            return
        if pod.metadata.name in self._exited:
            return
        self._exited.add(pod.metadata.name)
        job = _job_of(pod)
        self.exited_at[job] = max(self.exited_at.get(job, 0.0), now)

    def _consider(self, pod: Any) -> None:
        meta = pod.metadata
        if (pod.status.phase if pod.status else None) != "Running":
            return
        if EXIT_ANNOTATION in (meta.annotations or {}) or meta.name in self._queued:
            return
        job = _job_of(pod)
        with self._cv:
            self._queued.add(meta.name)
            heapq.heappush(self._queue, (time.time() + self.hold, meta.name, job))
            self._cv.notify()

    def _mark(self) -> None:
        patch = {"metadata": {"annotations": {EXIT_ANNOTATION: "0"}}}
        while not self.stop.is_set():
            with self._cv:
                while not self._queue and not self.stop.is_set():
                    self._cv.wait(0.5)
                if self.stop.is_set():
                    return
                due, pod, job = self._queue[0]
                wait = due - time.time()
                if wait > 0:
                    self._cv.wait(min(wait, 0.5))
                    continue
                heapq.heappop(self._queue)
            try:
                self.core.patch_namespaced_pod(pod, self.ns, patch)
            except ApiException as err:
                if err.status != 404:
                    with self._cv:  # try again shortly
                        heapq.heappush(self._queue, (time.time() + 0.5, pod, job))
                    continue
            self.marked_at[job] = time.time()
            self.pods_marked += 1

    def close(self) -> None:
        self.stop.set()
        with self._cv:
            self._cv.notify_all()
