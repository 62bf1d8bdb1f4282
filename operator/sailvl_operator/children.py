"""Reconcile CaptionJob, TrainStage, EvalSuite and DataJob: children from builders, status from
the Jobs the operator owns. Thin: read, decide with the pure modules, do the I/O, write
status once, post events after the write.

Trust: phase, conditions, restarts, times and the Job name are derived from the owned
Jobs and their pods (:mod:`.status`), never read back from ``status``, which job pods
may patch. The restart attempt is the newest owned Job's ``restart-attempt`` label.

Concurrency: a resource is observed from several watch streams (its own events, its
Jobs', its pods'); :func:`observe` and :func:`reconcile` run one at a time per resource
in this process and re-read the resource inside that lock, so two handlers never both
write the same change and both post its event (``ChildrenCreated`` / ``JobRunning``
used to appear twice).

Failed attempts: a group restart keeps the failed attempt's Job (finished, holding no
resources) and its failed pod, whose logs explain the failure, until the stage
succeeds; then the earlier attempts are deleted. A stage that fails for good keeps them
until it is deleted (owner references). The failed pod (name, node, container, exit
code, reason) is also named in the condition message, ``status.message`` and the
warning event.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from sailvl.api import SpecError, parse_spec
from sailvl.api import constants as c
from sailvl.api.benchmarks import aggregate
from sailvl.api.compose import final_checkpoint
from sailvl.runtime.metrics import Metrics, family

from . import admission, k8s, watchstate
from . import builders as b
from . import datajob as dj
from . import diagnose as d
from . import gang as g
from . import kueue as q
from . import status as s

METRICS = Metrics(family("sailvl_operator_"))

log = logging.getLogger(__name__)
DEFAULTS = b.Defaults.from_env(os.environ)
_RBAC_DONE: set[str] = set()
_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class ChildRejected(Exception):
    """The API server refused to create a child; ``error`` says whether it can ever
    succeed (see :func:`sailvl_operator.diagnose.classify`)."""

    def __init__(self, obj: dict[str, Any], error: d.ApiError) -> None:
        self.error = error
        self.what = f"{obj['kind']} {obj['metadata']['name']}"
        super().__init__(f"creating {self.what}: {error.message}")


def _lock(kind: str, ns: str, name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((kind, ns, name), threading.Lock())


def write_status(body: dict[str, Any], kind: str, new: dict[str, Any]) -> bool:
    """Patch only the fields that differ from the resource's status; True if written.
    (The per-resource gauges follow the watch events: see :mod:`.watchstate`.)"""
    old = body.get("status") or {}
    diff = {k: v for k, v in new.items() if old.get(k) != v}
    if not diff:
        return False
    meta = body["metadata"]
    k8s.patch_status(kind, meta["namespace"], meta["name"], diff)
    return True


def invalid(body: dict[str, Any], kind: str, err: SpecError | str) -> None:
    """InvalidSpec: condition + Failed phase + a warning event; no children, no retries."""
    msg = err if isinstance(err, str) else "; ".join(err.problems)
    st = body.get("status") or {}
    gen = body["metadata"].get("generation")
    conds = s.phase_conditions(st.get("conditions"), c.FAILED, c.REASON_INVALID_SPEC, msg, gen)
    new = {"phase": c.FAILED, "message": msg, "conditions": conds, "observedGeneration": gen}
    if write_status(body, kind, new):
        kopf.warn(body, reason=c.REASON_INVALID_SPEC, message=msg)


def rejected(body: dict[str, Any], kind: str, err: ChildRejected) -> None:
    """A refused child create: InvalidSpec when it can never succeed; otherwise a
    retrying condition, a warning event and a kopf retry (TemporaryError)."""
    if err.error.permanent:
        invalid(body, kind, str(err))
        return
    st, gen = body.get("status") or {}, body["metadata"].get("generation")
    conds = s.set_condition(
        st.get("conditions"), c.COND_READY, False, s.REASON_API_RETRY, str(err), gen
    )
    if write_status(body, kind, {"conditions": conds}):
        kopf.warn(body, reason=s.REASON_API_RETRY, message=str(err))
    raise kopf.TemporaryError(str(err), delay=15)


def create_child(obj: dict[str, Any]) -> dict[str, Any]:
    try:
        return k8s.create(obj)
    except ApiException as err:
        raise ChildRejected(obj, d.classify(err.status or 0, err.reason or "", err.body)) from err


def ensure_job_rbac(namespace: str) -> None:
    if namespace in _RBAC_DONE:
        return
    for obj in b.job_rbac(namespace, DEFAULTS):
        create_child(obj)
    _RBAC_DONE.add(namespace)


def owned_jobs(kind: str, body: dict[str, Any], *, use_index: bool = False) -> list[dict[str, Any]]:
    """The Jobs this resource owns (labels select, the owner uid confirms); from the
    operator's Job index (:mod:`.watchstate`) when ``use_index`` and a handler bound it."""
    meta = body["metadata"]
    jobs = watchstate.indexed_jobs(meta["namespace"], [meta["name"]]) if use_index else None
    if jobs is None:
        sel = f"{c.LABEL_KIND}={kind},{c.LABEL_NAME}={meta['name']}"
        jobs = k8s.list_jobs(meta["namespace"], sel)
    return [
        j
        for j in jobs
        if (j["metadata"].get("labels") or {}).get(c.LABEL_KIND) == kind
        and any(o.get("uid") == meta.get("uid") for o in j["metadata"].get("ownerReferences") or [])
    ]


def _job_for(kind: str, name: str, ns: str, spec: Any, attempt: int) -> dict[str, Any]:
    if kind == "TrainStage":
        return b.train_job(name, ns, spec, attempt, DEFAULTS)
    if kind == "CaptionJob":
        return b.caption_job(name, ns, spec, DEFAULTS)
    if kind == "DataJob":
        return dj.datajob_job(name, ns, spec, DEFAULTS)
    return b.eval_job(name, ns, spec, DEFAULTS)


def missing_secrets(ns: str, job: dict[str, Any]) -> list[str]:
    """One line per missing Secret, naming where the pod template reads it."""
    where: dict[str, list[str]] = {}
    for name, at in d.secret_refs(job["spec"]["template"]["spec"]):
        where.setdefault(name, []).append(at)
    return [
        f"Secret {name!r} does not exist in namespace {ns} (read by {', '.join(at)})"
        for name, at in where.items()
        if k8s.secret_exists(ns, name) is False
    ]


def reconcile(kind: str, body: dict[str, Any]) -> None:
    """Create the children of a child resource (idempotent) and its status."""
    meta = body["metadata"]
    name, ns = meta["name"], meta["namespace"]
    with _lock(kind, ns, name):
        fresh = k8s.get(c.API_VERSION, kind, ns, name)
        if fresh is None:
            return
        try:
            _reconcile(kind, fresh)
        except ChildRejected as err:
            rejected(fresh, kind, err)


def _reconcile(kind: str, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    name, ns = meta["name"], meta["namespace"]
    try:  # the same validation as sailvl validate, with the names of the children
        spec = parse_spec(kind, dict(body.get("spec") or {}), name=name)
    except SpecError as err:
        invalid(body, kind, err)
        return
    newest = s.newest(owned_jobs(kind, body))
    if newest is not None:
        if s.decision_for(kind, newest, getattr(spec, "max_restarts", 0)).action != "none":
            _observe(kind, body)  # finished (or restarting): spec edits are ignored
            return
        attempt = s.attempt_of(newest)
    else:
        attempt = 0
    job = _job_for(kind, name, ns, spec, attempt)
    if newest is None and (missing := missing_secrets(ns, job)):
        invalid(body, kind, "; ".join(missing))
        return
    ensure_job_rbac(ns)
    children = [b.config_map(kind, name, ns, spec)]
    if kind == "TrainStage":
        children.append(b.headless_service(name, ns))
    if kind == "TrainStage":
        g.ensure(body, spec, attempt, DEFAULTS)  # type: ignore[arg-type]
    for child in [*children, job]:
        kopf.adopt(child, owner=body)
        create_child(child)
    if newest is None:
        # Posted here, once, when the first attempt's Job is created: deriving it from a
        # Pending status missed it whenever the pods were Running before the first
        # status write (fast nodes), and posted it twice from two watch streams before.
        kopf.info(body, reason=c.REASON_CREATED, message=f"created Job {job['metadata']['name']}")
    existing = k8s.get("batch/v1", "Job", ns, job["metadata"]["name"]) or job
    if kind == "TrainStage":  # a change of spec.suspend, never its level (see .kueue)
        admission.pass_on_suspend(body, existing, bool(getattr(spec, "suspend", False)))
    _observe(kind, body)


def observe(kind: str, ns: str, name: str) -> str | None:
    """Fold the owned Jobs' state into the resource's status; returns the new phase."""
    with _lock(kind, ns, name):
        body = k8s.get(c.API_VERSION, kind, ns, name)
        if body is None:
            return None
        try:
            return _observe(kind, body)
        except ChildRejected as err:  # the restart Job was refused
            rejected(body, kind, err)
            return None


def _observe(kind: str, body: dict[str, Any]) -> str | None:
    meta, st = body["metadata"], body.get("status") or {}
    name, ns, gen = meta["name"], meta["namespace"], meta.get("generation")
    try:
        spec = parse_spec(kind, dict(body.get("spec") or {}))
    except SpecError:
        return None  # reconcile wrote InvalidSpec
    # The Jobs come from the index: every event of a Job runs this again once kopf has
    # indexed it, and the index only moves forward, so a status written from it never
    # goes back. A group restart (it creates a Job) is decided on a fresh list: the index
    # may not hold the restart this process created a moment ago.
    jobs = owned_jobs(kind, body, use_index=True)
    decision = _decision(kind, spec, s.newest(jobs))
    if decision is not None and decision.action == "restart":
        jobs = owned_jobs(kind, body)
        decision = _decision(kind, spec, s.newest(jobs))
    job = s.newest(jobs)
    if job is None or decision is None:
        return None  # reconcile creates it
    attempt = s.attempt_of(job)
    outcome = s.job_outcome(job)
    phase, reason, message = decision.phase, decision.reason, decision.message
    workload = admission.workload_of(job) if kind == "TrainStage" else None
    phase, reason, message = q.queued_phase(
        phase, reason, message, job, workload, bool(getattr(spec, "suspend", False))
    )
    problems: list[d.PodProblem] = []
    if outcome.phase == c.FAILED or outcome.active > int(
        (job.get("status") or {}).get("ready") or 0
    ):
        problems = d.pod_problems(k8s.list_pods(ns, f"{JOB_NAME_LABEL}={job['metadata']['name']}"))
    failed = [p.text for p in problems if not p.stuck]
    stuck = [p for p in problems if p.stuck]
    if decision.action in ("fail", "restart") and failed:
        message = f"{message}; {'; '.join(failed[:3])}"
    if decision.action == "none" and stuck:  # pods that will never start: not Running
        phase, reason = c.PENDING, stuck[0].reason
        message = "; ".join(p.text for p in stuck[:3])
    if reason == c.REASON_CONFIG_ERROR and st.get("message"):
        message = st["message"]  # what the job itself reported before exiting 2
    new: dict[str, Any] = {"jobName": job["metadata"]["name"], "observedGeneration": gen}
    if kind == "TrainStage":
        new["restarts"] = attempt
        if decision.action == "restart":
            g.fresh(body, spec, attempt + 1, DEFAULTS)  # type: ignore[arg-type]
            nxt = b.train_job(name, ns, spec, attempt + 1, DEFAULTS)  # type: ignore[arg-type]
            kopf.adopt(nxt, owner=body)
            create_child(nxt)  # the failed attempt's Job stays (module docstring)
            new.update(restarts=attempt + 1, jobName=nxt["metadata"]["name"])
        if decision.action == "succeed":
            new["finalCheckpoint"] = final_checkpoint(spec.output)  # type: ignore[attr-defined]
            for old in jobs:
                if old is not job:
                    k8s.delete_job(ns, old["metadata"]["name"])
    if kind == "CaptionJob":
        new["shardsTotal"] = st.get("shardsTotal") or int(job["spec"].get("completions") or 0)
    if kind == "DataJob":
        new.update(dj.progress(job))
    if kind == "EvalSuite" and phase == c.SUCCEEDED:
        # Exactly the suite's benchmarks: a job may report more than it was asked for.
        wanted = {x.name for x in spec.all_benchmarks()}  # type: ignore[attr-defined]
        scores = {k: v for k, v in (st.get("scores") or {}).items() if k in wanted}
        agg = aggregate(scores)
        new["overall"] = agg.pop("overall", None)
        new["categories"] = agg
    new["phase"] = phase
    if phase in c.TERMINAL_PHASES and reason != c.REASON_CONFIG_ERROR:
        # While a job runs, status.message is the job's (e.g. its error before exit 2);
        # the operator's own reasons and messages live in the conditions.
        new["message"] = message or None
    conds = s.phase_conditions(st.get("conditions"), phase, reason, message, gen)
    conds = q.admission_conditions(conds, workload, gen)  # Kueue's QuotaReserved, Admitted
    new["conditions"] = _restarting(conds, kind, decision.action, attempt, outcome, message, gen)
    starts = [j["status"]["startTime"] for j in jobs if (j.get("status") or {}).get("startTime")]
    # The first attempt's start; kept once set (a success deletes earlier attempts' Jobs).
    new["startTime"] = st.get("startTime") or (min(starts) if starts else None)
    if phase in c.TERMINAL_PHASES:
        new["completionTime"] = outcome.completion_time or st.get("completionTime") or s.now()
    new = {k: v for k, v in new.items() if v is not None}
    old_ready = s.condition(st.get("conditions"), c.COND_READY) or {}
    if write_status(body, kind, new):
        if decision.action == "restart":
            kopf.warn(body, reason=c.REASON_RESTARTING, message=message)
        elif reason != c.REASON_CREATED and (
            phase != st.get("phase") or reason != old_ready.get("reason")
        ):
            bad = phase == c.FAILED or bool(stuck)
            (kopf.warn if bad else kopf.info)(body, reason=reason, message=message or phase)
    return phase


def _decision(kind: str, spec: Any, job: dict[str, Any] | None) -> s.TrainDecision | None:
    if job is None:
        return None
    return s.decision_for(kind, job, getattr(spec, "max_restarts", 0))


def _restarting(
    conds: list[dict[str, Any]],
    kind: str,
    action: str,
    attempt: int,
    outcome: s.JobOutcome,
    message: str,
    gen: int | None,
) -> list[dict[str, Any]]:
    """Restarting: True from a group restart until the new attempt's pods run."""
    if kind != "TrainStage":
        return conds
    if action == "restart":  # the message names the failed pod until the condition clears
        return s.set_condition(conds, c.COND_RESTARTING, True, c.REASON_RESTARTING, message, gen)
    current = s.condition(conds, c.COND_RESTARTING) or {}
    if attempt > 0 and action == "none" and outcome.phase in (c.PENDING, c.SUSPENDED):
        msg = current.get("message") or f"attempt {attempt} is waiting for its pods"
        return s.set_condition(conds, c.COND_RESTARTING, True, c.REASON_RESTARTING, msg, gen)
    if s.condition(conds, c.COND_RESTARTING) is None:
        return conds
    if outcome.phase == c.RUNNING:
        if current.get("reason") == s.REASON_ATTEMPT_RUNNING:
            return conds  # already cleared; its message keeps why the restart happened
        msg = f"attempt {attempt} is running; the restart was for: {current.get('message')}"
        return s.set_condition(conds, c.COND_RESTARTING, False, s.REASON_ATTEMPT_RUNNING, msg, gen)
    ready = s.condition(conds, c.COND_READY) or {}
    return s.set_condition(
        conds,
        c.COND_RESTARTING,
        False,
        ready.get("reason") or "Finished",
        ready.get("message", ""),
        gen,
    )
