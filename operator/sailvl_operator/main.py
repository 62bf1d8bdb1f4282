"""kopf entry point: ``kopf run --standalone [--all-namespaces | -n NS] -m sailvl_operator.main``.

Handler function names are stable ids (kopf stores progress under them): do not rename.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import kopf

from sailvl.api import constants as c
from sailvl.runtime.metrics import OPERATOR_METRICS_PORT, serve

from . import children, curriculum, diagnose, experiment, k8s, kueue, leader, runs, watchstate
from . import status as s

METRICS = children.METRICS  # one lazily-registered set per process
# Kinds whose status comes from their own Jobs (children.observe); DataJob is no step kind.
JOB_KINDS = (*curriculum.CHILD_KINDS, "DataJob")
G, V = c.GROUP, c.VERSION
KIND_PLURALS = (
    ("CaptionJob", "captionjobs"),
    ("TrainStage", "trainstages"),
    ("EvalSuite", "evalsuites"),
    ("DataJob", "datajobs"),
    ("Curriculum", "curricula"),
    ("Experiment", "experiments"),
)


@kopf.on.login()
def operator_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG (read at login time)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def operator_configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Watches can stall silently without explicit timeouts (kopf #698).
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 5
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
    settings.posting.level = logging.INFO
    # Handlers are sync and spend their time waiting on the API server; kopf's default
    # pool (min(32, CPUs + 4) threads: 6 on 2 cores) queues bursts of finishing Jobs.
    # tests/bench/bench_operator.py, 20 curricula back to back: Job done -> next child
    # p50 3.9 s with 6 threads, 1.5 s with 32. k8s.py sizes its connection pool to match.
    settings.execution.max_workers = k8s.WORKERS
    port = int(os.environ.get("SAILVL_METRICS_PORT", str(OPERATOR_METRICS_PORT)))
    if port > 0:
        serve(port)
    METRICS.labels("sailvl_operator_info", version="0.1.0").set(1)
    # Every kind's error counter exists (at 0) from the start, so `rate()` in the
    # dashboard and in SailvlOperatorErrors reads 0 rather than no data.
    for kind, _plural in KIND_PLURALS:
        METRICS.labels("sailvl_operator_errors_total", kind=kind)


# Several replicas: nothing else starts before this one holds the leader Lease (leader.py).
kopf.on.startup(id="operator_leader")(leader.wait_for_leadership)


def _timed(kind: str, handler: str, fn: Any, *args: Any) -> Any:
    start = time.monotonic()
    try:
        out = fn(*args)
        METRICS.labels("sailvl_operator_reconciles_total", kind=kind, result="success").inc()
        return out
    except kopf.TemporaryError:
        METRICS.labels("sailvl_operator_reconciles_total", kind=kind, result="retry").inc()
        raise
    except Exception:
        METRICS.labels("sailvl_operator_reconciles_total", kind=kind, result="error").inc()
        METRICS.labels("sailvl_operator_errors_total", kind=kind).inc()
        raise
    finally:
        METRICS.labels("sailvl_operator_step_duration_seconds", kind=kind, handler=handler).observe(
            time.monotonic() - start
        )


# --- CaptionJob, TrainStage, EvalSuite, DataJob: children and status from their Job.


@kopf.on.resume(G, V, "captionjobs")
@kopf.on.create(G, V, "captionjobs")
@kopf.on.update(G, V, "captionjobs", field="spec")
def captionjob_reconcile(body: kopf.Body, **_: Any) -> None:
    _timed("CaptionJob", "reconcile", children.reconcile, "CaptionJob", dict(body))


@kopf.on.resume(G, V, "trainstages")
@kopf.on.create(G, V, "trainstages")
@kopf.on.update(G, V, "trainstages", field="spec")
def trainstage_reconcile(body: kopf.Body, **_: Any) -> None:
    _timed("TrainStage", "reconcile", children.reconcile, "TrainStage", dict(body))


@kopf.on.resume(G, V, "evalsuites")
@kopf.on.create(G, V, "evalsuites")
@kopf.on.update(G, V, "evalsuites", field="spec")
def evalsuite_reconcile(body: kopf.Body, **_: Any) -> None:
    _timed("EvalSuite", "reconcile", children.reconcile, "EvalSuite", dict(body))


@kopf.on.resume(G, V, "datajobs")
@kopf.on.create(G, V, "datajobs")
@kopf.on.update(G, V, "datajobs", field="spec")
def datajob_reconcile(body: kopf.Body, **_: Any) -> None:
    """DataJob (import / score / filter): its Indexed Job from .datajob, the rest as above."""
    _timed("DataJob", "reconcile", children.reconcile, "DataJob", dict(body))


def _parent_labels(kind: str, ns: str, owner: str) -> dict[str, str]:
    """The labels of a Job's owner (only they are read: the index has them)."""
    res = watchstate.indexed_child(kind, ns, owner) or k8s.get(c.API_VERSION, kind, ns, owner)
    return dict((res or {}).get("metadata", {}).get("labels") or {})


def _observe_owner(body: kopf.Body, *, is_job: bool = False) -> None:
    """Re-derive the status of the resource that owns a Job or pod (by its labels).

    A Curriculum's hand-over comes first, in this thread, when the Job event says
    Complete: a complete Job is final (the child succeeded, whatever else its status
    says), and the Curriculum derives the child's phase from its Jobs, never from the
    child's status, so the child's own status write need not come before the next
    child's create. That write runs in the background (:data:`OBSERVER`): kopf handles
    one Job's events one at a time, and the Job's ``Complete`` used to wait behind the
    status write of its previous event."""
    labels = body.metadata.labels
    kind, owner, ns = labels.get(c.LABEL_KIND), labels.get(c.LABEL_NAME), body.metadata.namespace
    if kind not in JOB_KINDS or not owner or not ns:
        return
    done = is_job and s.job_outcome(dict(body)).phase == c.SUCCEEDED
    if done and (parent := _parent_labels(kind, ns, owner).get(c.LABEL_CURRICULUM)):
        _timed("Curriculum", "advance", curriculum.advance, ns, parent, owner)
    observe_soon(kind, ns, owner)


#: The children's observes, one at a time per child, off kopf's handler threads.
OBSERVER = runs.Background(workers=k8s.BACKGROUND_WORKERS)


def observe_soon(kind: str, ns: str, name: str) -> None:
    """Observe a child in the background; its parents advance when it has finished."""
    OBSERVER.submit((kind, ns, name), lambda _: _observe_and_advance(kind, ns, name))


def _observe_and_advance(kind: str, ns: str, name: str) -> None:
    phase = _timed(kind, "observe", children.observe, kind, ns, name)
    if phase not in c.TERMINAL_PHASES:
        return
    parents = _parent_labels(kind, ns, name)
    if cur := parents.get(c.LABEL_CURRICULUM):
        _timed("Curriculum", "advance", curriculum.advance, ns, cur, name)
    if exp := parents.get(c.LABEL_EXPERIMENT):
        _timed("Experiment", "advance", experiment.advance, ns, exp)


@kopf.on.event("batch", "v1", "jobs", labels={c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE})
def job_observe(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    watchstate.bind(kwargs)
    if type != "DELETED":
        _observe_owner(body, is_job=True)


def _pod_in_trouble(body: kopf.Body, **_: Any) -> bool:
    st = body.get("status") or {}
    return st.get("phase") == "Failed" or bool(diagnose.pod_problems([dict(body)]))


@kopf.on.event(
    "",
    "v1",
    "pods",
    labels={c.LABEL_PART_OF: c.PART_OF_VALUE, c.LABEL_KIND: kopf.PRESENT},
    when=_pod_in_trouble,
)
def pod_observe(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    """A failed or stuck pod (image pull, missing config) names itself in the status;
    the Job's own status does not change while a pod waits for its image."""
    watchstate.bind(kwargs)
    if type != "DELETED":
        _observe_owner(body)


# --- Watch state: every event of every kind (the initial list after a start included)
# feeds the resources-by-phase gauges, and re-derives a child's status from its Jobs,
# which undoes a status field a job pod forged.


def _watch(kind: str) -> Any:
    def handler(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        watchstate.bind(kwargs)
        watchstate.observe_event(METRICS, PHASES, kind, dict(body), type)
        if kind == "Experiment":
            experiment.observe_metrics(dict(body), type)
        if type != "DELETED" and kind in JOB_KINDS and body.metadata.namespace:
            observe_soon(kind, body.metadata.namespace, body.metadata.name)

    return handler


PHASES = watchstate.PhaseIndex()
for _kind, _plural in KIND_PLURALS:
    kopf.on.event(G, V, _plural, id=f"{_kind.lower()}_watch")(_watch(_kind))


# --- In-memory indices (watchstate.py): the hand-over reads Jobs and a Curriculum's
# children from them instead of listing them on every event.
kopf.index(
    "batch", "v1", "jobs", labels={c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE}, id=watchstate.JOB_INDEX
)(watchstate.index_job)
for _kind, _plural in KIND_PLURALS[:3]:  # CaptionJob, TrainStage, EvalSuite
    kopf.index(G, V, _plural, id=watchstate.CHILD_INDEX_PREFIX + _kind.lower())(
        watchstate.index_child(_kind)
    )
kopf.index(G, V, "curricula", id=watchstate.CURRICULUM_INDEX)(watchstate.index_curriculum)


# --- Kueue: its admission decisions (the Workload's conditions) reach the TrainStage
# status as they happen; the Job itself does not change while it waits in the queue.


def kueue_workload_observe(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Observe the Job a Workload belongs to, as if the Job had changed."""
    if type == "DELETED" or not body.metadata.namespace:
        return
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") == "Job":
            job = k8s.get("batch/v1", "Job", body.metadata.namespace, ref["name"])
            if job is not None:
                job_observe(kopf.Body(job), "MODIFIED")


# The chart sets SAILVL_KUEUE_WORKLOADS=0 when it grants no access to Workloads; without
# Kueue's CRDs kopf only warns that the resource cannot be served (and picks it up if
# the CRDs appear later).
if os.environ.get("SAILVL_KUEUE_WORKLOADS", "1") != "0":
    kopf.on.event(
        kueue.WORKLOAD_GROUP,
        kueue.WORKLOAD_VERSION,
        kueue.WORKLOAD_PLURAL,
        labels={kueue.LABEL_JOB_UID: kopf.PRESENT},
        id="kueue_workload_observe",
    )(kueue_workload_observe)


# --- Curriculum: one child at a time.


@kopf.on.resume(G, V, "curricula")
@kopf.on.create(G, V, "curricula")
@kopf.on.update(G, V, "curricula", field="spec")
def curriculum_reconcile(name: str, namespace: str, **kwargs: Any) -> None:
    watchstate.bind(kwargs)
    _timed("Curriculum", "advance", curriculum.advance, namespace, name)


@kopf.on.create(G, V, "curricula")
@kopf.on.update(G, V, "curricula", field="spec")
def curriculum_warn(body: kopf.Body, **_: Any) -> None:
    """A warning event per valid-but-suspicious field (a gate threshold <= 1 on a 0-100
    score), the lines ``sailvl validate`` prints; an invalid spec is the reconcile
    handler's (InvalidSpec)."""
    from sailvl.api import SpecError, parse_resource
    from sailvl.api.validation import REASON_SUSPICIOUS_SPEC, spec_warnings

    try:
        kind, _, spec = parse_resource(dict(body))
    except SpecError:
        return
    for warning in spec_warnings(kind, spec):
        kopf.warn(body, reason=REASON_SUSPICIOUS_SPEC, message=warning)


def _child_changed(body: kopf.Body, **kwargs: Any) -> None:
    watchstate.bind(kwargs)
    parent = body.metadata.labels.get(c.LABEL_CURRICULUM)
    if parent and body.metadata.namespace:
        _timed("Curriculum", "advance", curriculum.advance, body.metadata.namespace, parent)


# No timer on Curriculum: kopf would put a finalizer on every Curriculum to stop it, and
# a Curriculum could then not be deleted while the operator is down. The safety net for
# a missed event is the watch itself: it is re-listed every `server_timeout` seconds,
# which runs these event handlers (level-based, idempotent) for every child again.
for _plural in ("captionjobs", "trainstages", "evalsuites"):
    kopf.on.event(
        G, V, _plural, labels={c.LABEL_CURRICULUM: kopf.PRESENT}, id=f"curriculum_child_{_plural}"
    )(_child_changed)


# --- Experiment: trials under a parallelism limit, then the strategy's decision.


@kopf.on.resume(G, V, "experiments")
@kopf.on.create(G, V, "experiments")
@kopf.on.update(G, V, "experiments", field="spec")
def experiment_reconcile(name: str, namespace: str, **kwargs: Any) -> None:
    watchstate.bind(kwargs)
    _timed("Experiment", "advance", experiment.advance, namespace, name)


def _trial_changed(body: kopf.Body, **kwargs: Any) -> None:
    watchstate.bind(kwargs)
    parent = body.metadata.labels.get(c.LABEL_EXPERIMENT)
    if parent and body.metadata.namespace:
        _timed("Experiment", "advance", experiment.advance, body.metadata.namespace, parent)


# No timer, for the Curriculum's reason (above): the watches' re-list is the safety net.
for _plural in ("trainstages", "evalsuites"):
    kopf.on.event(
        G, V, _plural, labels={c.LABEL_EXPERIMENT: kopf.PRESENT}, id=f"experiment_trial_{_plural}"
    )(_trial_changed)
