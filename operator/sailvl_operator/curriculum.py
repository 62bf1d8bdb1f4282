"""Advance a Curriculum: one child at a time, gates, one status write per run.

The decision is :func:`sailvl.api.flow.decide` (pure, shared with the local executor);
this module only reads the children, creates the next one and writes the status. It is
safe to run concurrently and repeatedly: child names are deterministic, a 409 means the
child is already there, and the status is written only when it changed.

The hand-over (a child's Job done -> the next child created) is one request, two where
the next step takes the finished job's report: the decision is made on kopf's indices
(:mod:`.watchstate`) and the child created at once (:func:`_handover`); the status write
that follows is decided on fresh reads. An advance the indices find nothing to do for
costs no request at all (:func:`_idle`). ``tests/bench/bench_operator.py`` measures it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from typing import Any, TypeVar

import kopf

from sailvl.api import SpecError, parse_resource, parse_spec
from sailvl.api import constants as c
from sailvl.api.compose import Step, child_name, steps
from sailvl.api.curriculum import CurriculumSpec
from sailvl.api.flow import ChildState, child_spec, decide, step_rows
from sailvl.runtime.metrics import Metrics, family

from . import builders as b
from . import k8s, watchstate
from . import status as s
from .children import ChildRejected, create_child, invalid, rejected, write_status
from .runs import KeyedRuns

METRICS = Metrics(family("sailvl_curriculum_"))
CHILD_KINDS = ("CaptionJob", "TrainStage", "EvalSuite")
_LOCKS_GUARD = threading.Lock()
RUNS = KeyedRuns()  # advances by (namespace, name)
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
    objects (``indexed``). Either index can lag the API server: the job has reported its
    scores and tokens, or the child's observe has written its status, before the index
    holds them. The children named in ``fresh`` are read again, so a hand-over is not
    judged on older scores or tokens (the caller names the children whose Job event woke
    it and whose reports the next step takes; kopf indexed that Job before running the
    handler); a child whose status says finished while its indexed Jobs do not is read
    again with its Jobs, so a hand-over is not missed. (A forged terminal status costs
    that re-read, nothing more: the phase still comes from the Jobs.)"""
    names = sorted(o["metadata"]["name"] for _, _, o in objs)
    jobs = (watchstate.indexed_jobs(ns, names) if use_index else None) if objs else []
    from_index = jobs is not None
    if jobs is None:
        jobs = k8s.list_jobs(ns, f"{c.LABEL_NAME} in ({','.join(names)})")
    out: dict[K, ChildState] = {}
    for kind, key, obj in objs:
        phase, start, end = derived_phase(kind, obj, jobs)
        child = obj["metadata"]["name"]
        if from_index and indexed and child in fresh:
            obj = k8s.get(c.API_VERSION, kind, ns, child) or obj
            phase, start, end = derived_phase(kind, obj, jobs)
        said = (obj.get("status") or {}).get("phase")
        if from_index and said in c.TERMINAL_PHASES and phase not in c.TERMINAL_PHASES:
            # The child's status is ahead of the Job index: read its Jobs. (The other way
            # round is the child's own status lagging behind its Jobs, the truth.)
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
    created = meta.get("creationTimestamp")  # a step's start until its Job has started
    if job is None:
        failed = (obj.get("status") or {}).get("phase") == c.FAILED
        return (c.FAILED if failed else c.PENDING), created, None
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
    return decision.phase, (min(starts) if starts else created), end


def advance(ns: str, name: str, fresh: str | None = None) -> None:
    """One advance per Curriculum at a time in this process, and no trigger ever waits
    for one (:class:`.runs.KeyedRuns`): a finishing child fires its Job's events and its
    own status events, and two concurrent runs would both create the next child (one
    409) and both post the StepStarted event. Handler threads used to wait on a lock
    here: in the 50-Curricula bench a hand-over's dozen events held most of the pool's
    32 threads waiting, and a new child's create handler (queued behind its own ADDED
    event's advance) ran 30 s after the child appeared."""
    RUNS.run((ns, name), lambda names: _advance(ns, name, names), fresh)


def _advance(ns: str, name: str, fresh: Collection[str] = ()) -> None:
    """Decide and act: a hand-over's create on the indices (see :func:`_handover`), the
    status write on fresh reads."""
    indexed = watchstate.bound()
    body = watchstate.indexed_curriculum(ns, name) if indexed else None
    created, view = _handover(ns, name, body, fresh) if body is not None else (None, None)
    if created is False:
        return  # the create was refused: the refusal is in the status
    if body is not None and view is not None and _idle(ns, name, body, view):
        return
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
    if created:  # the status changes with it: no indexed view needed
        children, decision = {}, None
    else:
        if view is None:
            view = children_of(ns, name, _feeding(cur, name, fresh))
        children = {**_created_since(ns, name, view), **view} if indexed else view
        decision = decide(cur, children)
    if decision is None or (
        indexed
        and (
            decision.action in ("create", "fail", "succeed")
            or _new_status(body, cur, children, decision) != {}
        )
    ):
        # The indices answer "nothing to do" cheaply; whatever is written is decided on
        # fresh reads. Under load kopf's watches lag by seconds, and a stale index would
        # write an older row (a step back to Running) or end the Curriculum early.
        children = children_of(ns, name, fresh, use_index=False)
        decision = decide(cur, children)
    step = decision.step
    if (
        decision.action == "create"
        and step is not None
        and step.name != created
        and not _create_step(ns, name, body, cur, children, step)
    ):
        return
    write(body, cur, children, decision)


def _idle(ns: str, name: str, body: dict[str, Any], view: dict[str, ChildState]) -> bool:
    """Whether the indices say there is nothing to do: nothing to create or end, and the
    indexed Curriculum's status is what a write would write (most advances; no read).
    An index behind this process's own status write can only make this False (a read
    follows), never hide a write: the status only moves forward with the children."""
    _, _, cur = parse_resource(body)
    assert isinstance(cur, CurriculumSpec)
    children = {**_created_since(ns, name, view), **view}
    decision = decide(cur, children)
    if decision.action in ("create", "fail", "succeed"):
        return False
    return _new_status(body, cur, children, decision) == {}


def _handover(
    ns: str, name: str, body: dict[str, Any], fresh: Collection[str]
) -> tuple[str | bool | None, dict[str, ChildState] | None]:
    """The hand-over: create the next child on the indexed view (the Curriculum from its
    index too), before anything else is read. What it rests on is final or fresh: a
    Job's Complete never goes back (and kopf indexed the Job that woke this run before
    running the handler), the finished child's reported tokens or scores are read again
    when the next step takes them (:func:`handover_reads_fresh`), and a child the index
    does not hold yet answers 409 (deterministic names). Returns the step created (None
    when there is none to create here, False when the API server refused it) and the
    indexed view of the children it read (None once it created one: the status is then
    decided on fresh reads)."""
    if (body.get("status") or {}).get("phase") in c.TERMINAL_PHASES:
        return None, None
    try:
        _, _, cur = parse_resource(body)
    except SpecError:
        return None, None  # the fresh read writes InvalidSpec
    assert isinstance(cur, CurriculumSpec)
    view = children_of(ns, name, _feeding(cur, name, fresh))
    children = {**_created_since(ns, name, view), **view}
    decision = decide(cur, children)
    step = decision.step
    if (
        decision.action != "create"
        or step is None
        or not handover_reads_fresh(cur, name, step, fresh)
    ):
        return None, view
    return (step.name if _create_step(ns, name, body, cur, children, step) else False), None


def _feeds(cur: CurriculumSpec, step: Step) -> bool:
    """Whether the step after ``step`` takes what ``step``'s job reported: a stage's
    eval takes the stage's tokens, and a gate the eval's scores."""
    gated = (
        step.kind == "EvalSuite"
        and step.stage_index is not None
        and step.name != "final-eval"
        and cur.stages[step.stage_index].gate is not None
    )
    return step.kind == "TrainStage" or gated


def _feeding(cur: CurriculumSpec, name: str, fresh: Collection[str]) -> set[str]:
    """The children of ``fresh`` worth a read: those whose reports the next step takes."""
    return {child_name(name, x.name) for x in steps(cur) if _feeds(cur, x)} & set(fresh)


def handover_reads_fresh(
    cur: CurriculumSpec, name: str, step: Step, fresh: Collection[str]
) -> bool:
    """Whether ``step``'s child may be created on the indexed view: the step before it
    feeds it nothing the index may hold an older copy of (:func:`_feeds`), or was read
    again (``fresh``). Job pods write those reports shortly before their Job ends."""
    order = steps(cur)
    at = next(i for i, x in enumerate(order) if x.name == step.name)
    if at == 0:
        return True
    prev = order[at - 1]
    return not _feeds(cur, prev) or child_name(name, prev.name) in fresh


#: Children this process created, by (namespace, curriculum): each step's state and the
#: monotonic time until which it stands in for the child while the index lacks it.
_CREATED: dict[tuple[str, str], dict[str, tuple[ChildState, float]]] = {}
CREATED_TTL = 30.0  # seconds; far beyond any watch lag, short enough to forget a deleted child


def _create_step(
    ns: str,
    name: str,
    body: dict[str, Any],
    cur: CurriculumSpec,
    children: dict[str, ChildState],
    step: Step,
) -> bool:
    """Create ``step``'s child (409: it is there); False when the API server refused it."""
    spec = child_spec(cur, step, children).model_dump(by_alias=True, exclude_none=True, mode="json")
    labels = {c.LABEL_CURRICULUM: name, c.LABEL_STEP: step.name}
    try:
        obj = create_child(
            b.owned_child(step.kind, child_name(name, step.name), ns, spec, body, labels)
        )
    except ChildRejected as err:  # e.g. a CEL rule of the child's CRD
        rejected(body, "Curriculum", err)
        return False
    start = ((obj or {}).get("metadata") or {}).get("creationTimestamp") or s.now()
    children[step.name] = state = ChildState(phase=c.PENDING, start_time=start)
    with _LOCKS_GUARD:
        _CREATED.setdefault((ns, name), {})[step.name] = (state, time.monotonic() + CREATED_TTL)
    return True


def _created_since(ns: str, name: str, indexed: dict[str, ChildState]) -> dict[str, ChildState]:
    """The children this process created that the index does not hold yet (read your
    own writes): without them, every trigger in the seconds of watch lag after a
    hand-over would decide to create the same child again (a 409 and a read each).
    Entries leave once the index holds the child or after :data:`CREATED_TTL`."""
    now = time.monotonic()
    with _LOCKS_GUARD:
        mine = _CREATED.get((ns, name))
        if not mine:
            return {}
        for step in [k for k, (_, until) in mine.items() if k in indexed or until < now]:
            del mine[step]
        if not mine:
            del _CREATED[(ns, name)]
        return {k: state for k, (state, _) in mine.items()}


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
