"""Reconcile CaptionJob, TrainStage and EvalSuite: children from builders, status from
their Job. Thin: read, decide with the pure modules, do the I/O, write status once."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from typing import Any

import kopf

from sailvl.api import SpecError, parse_spec
from sailvl.api import constants as c
from sailvl.api.benchmarks import aggregate
from sailvl.api.compose import final_checkpoint
from sailvl.runtime.metrics import Metrics, family

from . import admission, k8s
from . import builders as b
from . import gang as g
from . import kueue as q
from . import status as s

METRICS = Metrics(family("sailvl_operator_"))

log = logging.getLogger(__name__)
DEFAULTS = b.Defaults.from_env(os.environ)
_RBAC_DONE: set[str] = set()
# Last phase this process wrote per resource, for the resources-by-phase gauge. kopf runs
# sync handlers in a thread pool: the lock keeps one handler from iterating the dict
# while another adds to it ("dictionary changed size during iteration" failed handlers,
# which kopf then retried only after 60 s).
_PHASES: dict[tuple[str, str, str], str] = {}
_PHASES_LOCK = threading.Lock()


def write_status(body: dict[str, Any], kind: str, new: dict[str, Any]) -> bool:
    """Patch only the fields that differ from the resource's status; True if written.
    The per-resource phase and restart gauges follow every successful write."""
    old = body.get("status") or {}
    diff = {k: v for k, v in new.items() if old.get(k) != v}
    if not diff:
        return False
    meta = body["metadata"]
    k8s.patch_status(kind, meta["namespace"], meta["name"], diff)
    ident = {"namespace": meta["namespace"], "name": meta["name"]}
    if "phase" in diff:
        for phase in c.PHASES:
            METRICS.labels("sailvl_operator_resource_phase", kind=kind, phase=phase, **ident).set(
                1 if phase == diff["phase"] else 0
            )
        with _PHASES_LOCK:
            _PHASES[(kind, meta["namespace"], meta["name"])] = diff["phase"]
            counts = Counter(p for (k, _, _), p in _PHASES.items() if k == kind)
        for phase in c.PHASES:
            METRICS.labels("sailvl_operator_resources", kind=kind, phase=phase).set(counts[phase])
    if kind == "TrainStage" and "restarts" in diff:
        METRICS.labels("sailvl_operator_train_restarts", **ident).set(diff["restarts"])
    return True


def invalid(body: dict[str, Any], kind: str, err: SpecError) -> None:
    """InvalidSpec: condition + Failed phase + a warning event; no children, no retries."""
    msg = "; ".join(err.problems)
    st = body.get("status") or {}
    conds = s.phase_conditions(
        st.get("conditions"),
        c.FAILED,
        c.REASON_INVALID_SPEC,
        msg,
        body["metadata"].get("generation"),
    )
    if write_status(body, kind, {"phase": c.FAILED, "message": msg, "conditions": conds}):
        kopf.warn(body, reason=c.REASON_INVALID_SPEC, message=msg)


def ensure_job_rbac(namespace: str) -> None:
    if namespace in _RBAC_DONE:
        return
    for obj in b.job_rbac(namespace, DEFAULTS):
        k8s.create(obj)
    _RBAC_DONE.add(namespace)


def _job_for(kind: str, name: str, ns: str, spec: Any, attempt: int) -> dict[str, Any]:
    if kind == "TrainStage":
        return b.train_job(name, ns, spec, attempt, DEFAULTS)
    if kind == "CaptionJob":
        return b.caption_job(name, ns, spec, DEFAULTS)
    return b.eval_job(name, ns, spec, DEFAULTS)


def reconcile(kind: str, body: dict[str, Any]) -> None:
    """Create the children of a child resource (idempotent) and its first status."""
    meta, st = body["metadata"], body.get("status") or {}
    if st.get("phase") in c.TERMINAL_PHASES:
        return  # finished: spec edits are ignored
    name, ns = meta["name"], meta["namespace"]
    try:  # the same validation as sailvl validate, with the names of the children
        spec = parse_spec(kind, dict(body.get("spec") or {}), name=name)
    except SpecError as err:
        invalid(body, kind, err)
        return
    ensure_job_rbac(ns)
    children = [b.config_map(kind, name, ns, spec)]
    if kind == "TrainStage":
        children.append(b.headless_service(name, ns))
    attempt = int(st.get("restarts") or 0)
    job = _job_for(kind, name, ns, spec, attempt)
    if kind == "TrainStage":
        g.ensure(body, spec, attempt, DEFAULTS)  # type: ignore[arg-type]
    for child in [*children, job]:
        kopf.adopt(child, owner=body)
        k8s.create(child)
    existing = k8s.get("batch/v1", "Job", ns, job["metadata"]["name"]) or job
    # A change of spec.suspend, never its level (see .kueue); the Job then changed.
    suspend = bool(getattr(spec, "suspend", False))
    if kind == "TrainStage" and admission.pass_on_suspend(body, existing, suspend):
        existing = k8s.get("batch/v1", "Job", ns, job["metadata"]["name"]) or existing
    observe_job(kind, body, existing)


def observe_job(kind: str, body: dict[str, Any], job: dict[str, Any]) -> str | None:
    """Fold the Job's state into the resource's status; returns the new phase."""
    meta, st = body["metadata"], body.get("status") or {}
    if st.get("phase") in c.TERMINAL_PHASES:
        return None
    name, ns, gen = meta["name"], meta["namespace"], meta.get("generation")
    restarts = int(st.get("restarts") or 0)
    if kind == "TrainStage" and job["metadata"]["name"] != b.train_job_name(name, restarts):
        return None  # an event of an earlier attempt's Job
    outcome = s.job_outcome(job)
    new: dict[str, Any] = {"jobName": job["metadata"]["name"], "observedGeneration": gen}
    phase, reason, message = outcome.phase, outcome.reason, outcome.message
    workload = None
    if kind == "TrainStage":
        spec = parse_spec(kind, dict(body["spec"]))
        decision = s.train_decision(outcome, restarts, spec.max_restarts)  # type: ignore[attr-defined]
        phase, reason, message = decision.phase, decision.reason, decision.message
        workload = admission.workload_of(job)  # Kueue's, for a queued Job
        suspended = bool(getattr(spec, "suspend", False))
        phase, reason, message = q.queued_phase(phase, reason, message, job, workload, suspended)
        if reason == c.REASON_CONFIG_ERROR and st.get("message"):
            message = st["message"]  # what the job itself reported
        if decision.action == "restart":
            k8s.delete_job(ns, job["metadata"]["name"])
            g.fresh(body, spec, restarts + 1, DEFAULTS)  # type: ignore[arg-type]
            nxt = b.train_job(name, ns, spec, restarts + 1, DEFAULTS)  # type: ignore[arg-type]
            kopf.adopt(nxt, owner=body)
            k8s.create(nxt)
            new.update(restarts=restarts + 1, jobName=nxt["metadata"]["name"])
        if decision.action == "succeed":
            new["finalCheckpoint"] = final_checkpoint(spec.output)  # type: ignore[attr-defined]
    if kind == "CaptionJob":
        new["shardsTotal"] = (
            int(job["spec"].get("completions") or 0)
            if not st.get("shardsTotal")
            else st["shardsTotal"]
        )
    if kind == "EvalSuite" and phase == c.SUCCEEDED:
        agg = aggregate(dict(st.get("scores") or {}))
        new["overall"] = agg.pop("overall", None)
        new["categories"] = agg
    new["phase"] = phase
    if phase in c.TERMINAL_PHASES and reason != c.REASON_CONFIG_ERROR:
        # While a job runs, status.message is the job's (e.g. its error before exit 2);
        # the operator's own reasons and messages live in the conditions.
        new["message"] = message or None
    new["conditions"] = s.phase_conditions(st.get("conditions"), phase, reason, message, gen)
    new["conditions"] = q.admission_conditions(new["conditions"], workload, gen)
    if kind == "TrainStage" and "restarts" in new:
        new["conditions"] = s.set_condition(
            new["conditions"], c.COND_RESTARTING, True, reason, message, gen
        )
    if not st.get("startTime") and phase != c.PENDING:
        new["startTime"] = s.now()
    if phase in c.TERMINAL_PHASES:
        new["completionTime"] = s.now()
    new = {k: v for k, v in new.items() if v is not None}
    if write_status(body, kind, new):
        if "restarts" in new:
            kopf.warn(body, reason=c.REASON_RESTARTING, message=message)
        elif phase != st.get("phase"):
            post = kopf.warn if phase == c.FAILED else kopf.info
            post(body, reason=reason, message=message or phase)
    return phase
