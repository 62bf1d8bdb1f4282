"""Advance a Curriculum: one child at a time, gates, one status write per run.

The decision is :func:`sailvl.api.flow.decide` (pure, shared with the local executor);
this module only reads the children, creates the next one and writes the status. It is
safe to run concurrently and repeatedly: child names are deterministic, a 409 means the
child is already there, and the status is written only when it changed (an idle
curriculum costs reads, never writes).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any, TypeVar

import kopf

from sailvl.api import SpecError, parse_resource, parse_spec
from sailvl.api import constants as c
from sailvl.api.compose import child_name, steps
from sailvl.api.curriculum import CurriculumSpec
from sailvl.api.flow import ChildState, child_spec, decide, step_rows
from sailvl.runtime.metrics import Metrics, family

from . import builders as b
from . import k8s, watchstate
from . import status as s
from .children import ChildRejected, create_child, invalid, rejected, write_status

METRICS = Metrics(family("sailvl_curriculum_"))
CHILD_KINDS = ("CaptionJob", "TrainStage", "EvalSuite")
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_WAITING: dict[tuple[str, str], set[str]] = {}  # an advance waiting for the lock
K = TypeVar("K")


def children_of(
    ns: str, name: str, fresh: Collection[str] = (), *, use_index: bool = True
) -> dict[str, ChildState]:
    """Each step's child with its phase derived from the Jobs the child owns (see
    :func:`child_states`). Children and Jobs come from the operator's in-memory indices
    (:mod:`.watchstate`) when the handler bound them, else from list calls; the children
    named in ``fresh`` (whose Job events woke this advance) are read from the API server."""
    indexed = watchstate.indexed_children(ns, name) if use_index else None
    if indexed is None:
        found = [
            (kind, obj)
            for kind in CHILD_KINDS
            for obj in k8s.list_custom(kind, ns, f"{c.LABEL_CURRICULUM}={name}")
        ]
    else:
        found = indexed
    objs = []
    for kind, obj in found:
        step = (obj["metadata"].get("labels") or {}).get(c.LABEL_STEP)
        if step and obj["metadata"]["name"] == child_name(name, step):
            objs.append((kind, step, obj))
    return child_states(ns, objs, indexed=indexed is not None, fresh=fresh, use_index=use_index)


def child_states(
    ns: str,
    objs: list[tuple[str, K, dict[str, Any]]],
    *,
    indexed: bool = False,
    fresh: Collection[str] = (),
    use_index: bool = True,
) -> dict[K, ChildState]:
    """The state of each child ``(kind, key, object)`` of a parent (Curriculum or
    Experiment), by key, with its phase derived from the Jobs the child owns, not from
    the child's status (job pods may patch that: a forged ``Succeeded`` would hand over
    to the next step early). A child without Jobs is Pending, or Failed when its status
    says so (InvalidSpec; a forged Failed can only stop the parent, never advance it).
    Scores and tokens are what the jobs report: that is their job.

    Jobs come from the watch index (:mod:`.watchstate`) when bound, and so may the
    objects (``indexed``). Either index can lag the API server: the child's observe has
    read the Job's end and written the child's status (scores included) before the
    index holds either. A child whose status and derived phase disagree on being
    finished, and the children named in ``fresh``, are read again with their Jobs, so a
    hand-over is neither missed nor judged on older scores. (A forged terminal status
    costs that re-read, nothing more: the phase still comes from the Jobs.)"""
    names = sorted(o["metadata"]["name"] for _, _, o in objs)
    jobs = (watchstate.indexed_jobs(ns, names) if use_index else None) if objs else []
    from_index = jobs is not None
    if jobs is None:
        jobs = k8s.list_jobs(ns, f"{c.LABEL_NAME} in ({','.join(names)})")
    out: dict[K, ChildState] = {}
    for kind, key, obj in objs:
        phase, start, end = derived_phase(kind, obj, jobs)
        said = (obj.get("status") or {}).get("phase")
        disagree = (said in c.TERMINAL_PHASES) != (phase in c.TERMINAL_PHASES)
        child = obj["metadata"]["name"]
        if from_index and (disagree or child in fresh):
            if indexed:
                obj = k8s.get(c.API_VERSION, kind, ns, child) or obj
            own = k8s.list_jobs(ns, f"{c.LABEL_NAME}={child}")
            phase, start, end = derived_phase(kind, obj, own)
        st = obj.get("status") or {}
        out[key] = ChildState(
            phase=phase,
            scores={k: float(v) for k, v in (st.get("scores") or {}).items()},
            tokens=st.get("tokens"),
            message=st.get("message"),
            start_time=start,
            completion_time=end,
        )
    return out


def derived_phase(
    kind: str, obj: dict[str, Any], jobs: list[dict[str, Any]]
) -> tuple[str, str | None, str | None]:
    """(phase, start, completion) of a child from its owned Jobs (see children_of)."""
    meta = obj["metadata"]
    owned = [
        j
        for j in jobs
        if (j["metadata"].get("labels") or {}).get(c.LABEL_KIND) == kind
        and any(o.get("uid") == meta.get("uid") for o in j["metadata"].get("ownerReferences") or [])
    ]
    job = s.newest(owned)
    if job is None:
        failed = (obj.get("status") or {}).get("phase") == c.FAILED
        return (c.FAILED if failed else c.PENDING), None, None
    try:
        max_restarts = int(
            getattr(parse_spec(kind, dict(obj.get("spec") or {})), "max_restarts", 0)
        )
    except SpecError:
        max_restarts = 0
    decision = s.decision_for(kind, job, max_restarts)
    outcome = s.job_outcome(job)
    starts = [j["status"]["startTime"] for j in owned if (j.get("status") or {}).get("startTime")]
    end = outcome.completion_time if decision.phase in c.TERMINAL_PHASES else None
    return decision.phase, (min(starts) if starts else None), end


def advance(ns: str, name: str, fresh: str | None = None) -> None:
    """One advance per Curriculum at a time in this process: a finishing child fires both
    its Job's event and its own status event, and two concurrent runs would both create
    the next child (one 409) and both post the StepStarted event.

    Triggers coalesce: while one advance waits for the lock, a later trigger joins it
    (adding its ``fresh`` child) and returns, since the waiting run starts after the
    trigger's event and reads everything then; a hand-over's half-dozen events cost one
    or two runs instead of a queue of handler threads, each blocked on the lock."""
    key = (ns, name)
    with _LOCKS_GUARD:
        waiting = _WAITING.get(key)
        if waiting is not None:
            waiting.update([fresh] if fresh else [])
            return
        mine = _WAITING[key] = {fresh} if fresh else set()
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _LOCKS_GUARD:
            _WAITING.pop(key, None)  # from here on a trigger waits for a run of its own
            names = frozenset(mine)
        _advance(ns, name, names)


def _advance(ns: str, name: str, fresh: Collection[str] = ()) -> None:
    body = k8s.get(c.API_VERSION, "Curriculum", ns, name)
    if body is None or (body.get("status") or {}).get("phase") in c.TERMINAL_PHASES:
        return
    try:
        _, _, parsed = parse_resource(body)
    except SpecError as err:
        invalid(body, "Curriculum", err)
        return
    assert isinstance(parsed, CurriculumSpec)
    cur: CurriculumSpec = parsed
    children = children_of(ns, name, fresh)
    decision = decide(cur, children)
    if watchstate.bound() and (
        decision.action in ("create", "fail", "succeed")
        or _new_status(body, cur, children, decision) != {}
    ):
        # The indices answer "nothing to do" cheaply; whatever is created or written is
        # decided on fresh reads. Under load kopf's watches lag by seconds, and a stale
        # index would write an older row (a step back to Running) or re-create a child.
        children = children_of(ns, name, fresh, use_index=False)
        decision = decide(cur, children)
    if decision.action == "create" and decision.step is not None:
        step = decision.step
        spec = child_spec(cur, step, children).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
        try:
            labels = {c.LABEL_CURRICULUM: name, c.LABEL_STEP: step.name}
            create_child(
                b.owned_child(step.kind, child_name(name, step.name), ns, spec, body, labels)
            )
        except ChildRejected as err:  # e.g. a CEL rule of the child's CRD
            rejected(body, "Curriculum", err)
            return
        children[step.name] = ChildState(phase=c.PENDING, start_time=s.now())
    write(body, cur, children, decision)


def write(
    body: dict[str, Any], cur: CurriculumSpec, children: dict[str, ChildState], decision: Any
) -> None:
    new = _new_status(body, cur, children, decision, full=True)
    if not write_status(body, "Curriculum", new):
        return
    _after_write(body, cur, children, decision)


def _new_status(
    body: dict[str, Any],
    cur: CurriculumSpec,
    children: dict[str, ChildState],
    decision: Any,
    *,
    full: bool = False,
) -> dict[str, Any]:
    """The status an advance writes; unless ``full``, only the fields that differ."""
    meta, st = body["metadata"], body.get("status") or {}
    all_steps = steps(cur)
    done = sum(1 for x in all_steps if children.get(x.name, ChildState()).phase == c.SUCCEEDED)
    phase = {"fail": c.FAILED, "succeed": c.SUCCEEDED}.get(decision.action, c.RUNNING)
    reason = decision.reason if decision.action in ("fail", "succeed") else c.REASON_STEP_STARTED
    current = decision.step.name if decision.step else None
    new: dict[str, Any] = {
        "phase": phase,
        "currentStep": current,
        "stepsDone": done,
        "stepsTotal": len(all_steps),
        "steps": step_rows(meta["name"], cur, children),
        "message": decision.message,
        "observedGeneration": meta.get("generation"),
    }
    new["conditions"] = s.phase_conditions(
        st.get("conditions"), phase, reason, decision.message, meta.get("generation")
    )
    if not st.get("startTime"):
        new["startTime"] = s.now()
    if phase in c.TERMINAL_PHASES:
        new["completionTime"] = s.now()
    new = {k: v for k, v in new.items() if v is not None}
    return new if full else {k: v for k, v in new.items() if st.get(k) != v}


def _after_write(
    body: dict[str, Any], cur: CurriculumSpec, children: dict[str, ChildState], decision: Any
) -> None:
    """Gauges and the event of a status write."""
    meta, st = body["metadata"], body.get("status") or {}
    all_steps = steps(cur)
    done = sum(1 for x in all_steps if children.get(x.name, ChildState()).phase == c.SUCCEEDED)
    current = decision.step.name if decision.step else None
    labels = {"namespace": meta["namespace"], "curriculum": meta["name"]}
    METRICS.labels("sailvl_curriculum_steps", **labels).set(len(all_steps))
    METRICS.labels("sailvl_curriculum_step", **labels).set(done)
    for stage in cur.stages:  # gate counters exist (at 0) from the start, so alerts see them
        if stage.gate is not None:
            gate_step = f"{stage.name}-eval"
            METRICS.labels("sailvl_curriculum_gate_failures_total", **labels, step=gate_step)
    if decision.action == "fail":
        if decision.reason == c.REASON_GATE_FAILED and decision.step is not None:
            METRICS.labels(
                "sailvl_curriculum_gate_failures_total", **labels, step=decision.step.name
            ).inc()
        kopf.warn(body, reason=decision.reason, message=decision.message)
    elif decision.action == "succeed":
        kopf.info(body, reason=c.REASON_COMPLETED, message=decision.message)
    elif current != st.get("currentStep"):
        kopf.info(body, reason=c.REASON_STEP_STARTED, message=decision.message)
