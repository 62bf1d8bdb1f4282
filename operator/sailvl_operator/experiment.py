"""Advance an Experiment: its trials' children, the status table, the decision, once.

The decision is :func:`sailvl.experiment.trials.decide` (pure, shared with ``sailvl
run``): given the spec and what every existing child reports, it says which children to
create now (at most ``parallelism`` trials active), the status table and the phase, and
once every trial is finished the strategy's result. This module only reads the
children, creates the ones asked for and writes the status.

Restart safety: a trial's children are named ``<experiment>-<trial>-<step>`` and
labelled with the experiment, trial and step; the trial list never depends on results,
so a restarted operator lists the same children under the same names, counts the same
active trials, and a create that races an earlier one gets 409 (already there). Child
phases come from the Jobs each child owns (:func:`.curriculum.child_states`), never
from a status a job pod may patch.

The decision is written once: in the status write that makes the Experiment terminal,
with the ``Decided`` event after it; a terminal Experiment is never re-decided (a
restarted operator, a late child event or a spec edit leave it as it is). While trials
run, ``status.decision`` stays empty: the rows carry the scores so far.

Metrics follow the watch (:func:`observe_metrics`), so they are right after an operator
restart, also for Experiments that finished before it, and go when the Experiment goes.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any

import kopf

from sailvl.api import SpecError, parse_resource
from sailvl.api import constants as c
from sailvl.api.experiment import ExperimentSpec
from sailvl.api.flow import ChildState
from sailvl.experiment.trials import (
    SKIPPED,
    ExperimentDecision,
    Results,
    child_name,
    child_spec,
    decide,
)
from sailvl.runtime.metrics import Metrics, family

from . import builders as b
from . import k8s
from . import status as s
from .children import ChildRejected, _lock, create_child, invalid, rejected, write_status
from .curriculum import child_states

KIND = "Experiment"
METRICS = Metrics(family("sailvl_experiment_"))
CHILD_KINDS = ("TrainStage", "EvalSuite")
#: Trial phases exported by ``sailvl_experiment_trials`` (every one, 0 when none).
TRIAL_PHASES = (c.PENDING, c.RUNNING, c.SUCCEEDED, c.FAILED, SKIPPED)
#: Events: a trial's first child was created; a trial failed; the decision was written.
REASON_TRIAL_STARTED = "TrialStarted"
REASON_TRIAL_FAILED = "TrialFailed"
REASON_DECIDED = "Decided"
#: Validated specs kept (see parsed_spec); an entry is a few KB.
SPEC_CACHE_SIZE = 256
_SPECS: dict[tuple[Any, Any], ExperimentSpec] = {}
_SPECS_GUARD = threading.Lock()


def results_of(ns: str, name: str) -> Results:
    """{trial: {step: ChildState}} of every child this Experiment created (labels
    select; the deterministic name confirms, so a look-alike cannot pose as a trial)."""
    objs = []
    for kind in CHILD_KINDS:
        for obj in k8s.list_custom(kind, ns, f"{c.LABEL_EXPERIMENT}={name}"):
            labels = obj["metadata"].get("labels") or {}
            trial, step = labels.get(c.LABEL_TRIAL), labels.get(c.LABEL_STEP)
            if trial and step and obj["metadata"]["name"] == child_name(name, trial, step):
                objs.append((kind, (trial, step), obj))
    out: Results = {}
    for (trial, step), state in child_states(ns, objs).items():
        out.setdefault(trial, {})[step] = state
    return out


def advance(ns: str, name: str) -> None:
    """One advance per Experiment at a time in this process: a finishing child fires its
    Job's event and its own status event, and two concurrent runs would both start the
    next trial (one 409) and both post its event."""
    with _lock(KIND, ns, name):
        _advance(ns, name)


def parsed_spec(body: dict[str, Any]) -> ExperimentSpec:
    """The validated spec, cached per (uid, generation): every child event runs an
    advance, and validation builds and checks every trial's children (1.6 s for 128
    trials), while the spec only changes with the generation. Invalid specs are not
    cached (they are refused once, then the Experiment is terminal)."""
    meta = body["metadata"]
    key = (meta.get("uid"), meta.get("generation"))
    with _SPECS_GUARD:
        hit = _SPECS.get(key)
    if hit is not None and key[0] is not None:
        return hit
    _, _, parsed = parse_resource(body)
    assert isinstance(parsed, ExperimentSpec)
    with _SPECS_GUARD:
        _SPECS[key] = parsed
        while len(_SPECS) > SPEC_CACHE_SIZE:
            _SPECS.pop(next(iter(_SPECS)))  # the oldest entry
    return parsed


def _advance(ns: str, name: str) -> None:
    body = k8s.get(c.API_VERSION, KIND, ns, name)
    if body is None or (body.get("status") or {}).get("phase") in c.TERMINAL_PHASES:
        return  # decided (or invalid): written once, never again
    try:
        exp = parsed_spec(body)
    except SpecError as err:
        invalid(body, KIND, err)
        return
    results = results_of(ns, name)
    decision = decide(exp, results)
    started: list[str] = []
    for start in decision.start:
        trial, step = start.trial, start.step
        spec = child_spec(exp, trial, step, results).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
        labels = {c.LABEL_EXPERIMENT: name, c.LABEL_TRIAL: trial.name, c.LABEL_STEP: step.name}
        child = b.owned_child(
            step.kind, child_name(name, trial.name, step.name), ns, spec, body, labels
        )
        try:
            create_child(child)
        except ChildRejected as err:  # e.g. a CEL rule of the child's CRD
            rejected(body, KIND, err)
            return
        if trial.name not in results:
            started.append(trial.name)
        results.setdefault(trial.name, {})[step.name] = ChildState(
            phase=c.PENDING, start_time=s.now()
        )
    if decision.start:  # the table and counts as they are now, with the new children
        decision = decide(exp, results)
    write(body, exp, decision, started)


def status_of(body: dict[str, Any], exp: ExperimentSpec, d: ExperimentDecision) -> dict[str, Any]:
    """The new status (pure): the table, counts, conditions, and on the terminal write
    the decision and the best trial."""
    meta, st = body["metadata"], body.get("status") or {}
    gen = meta.get("generation")
    new: dict[str, Any] = {
        "phase": d.phase,
        "strategy": exp.strategy.kind,
        "trialsTotal": len(d.rows),
        "trialsDone": d.done,
        "trialsRunning": d.running,
        "trials": d.rows,
        "message": d.message,
        "observedGeneration": gen,
    }
    conds = s.phase_conditions(st.get("conditions"), d.phase, d.reason, d.message, gen)
    for type_, value, reason, message in d.conditions:
        conds = s.set_condition(conds, type_, value == "True", reason, message, gen)
    new["conditions"] = conds
    if not st.get("startTime") and d.phase != c.PENDING:
        new["startTime"] = s.now()
    if d.phase in c.TERMINAL_PHASES:
        new["completionTime"] = s.now()
        new["decision"] = d.result
        new["best"] = d.best
    return {k: v for k, v in new.items() if v is not None}


def write(
    body: dict[str, Any], exp: ExperimentSpec, d: ExperimentDecision, started: list[str]
) -> None:
    """Write the status once; events only after the write succeeded."""
    st = body.get("status") or {}
    new = status_of(body, exp, d)
    if not write_status(body, KIND, new):
        return
    rows = {r["name"]: r for r in d.rows}
    for trial in started:
        variant = ", ".join(f"{k}={v}" for k, v in rows[trial].get("variant", {}).items())
        kopf.info(body, reason=REASON_TRIAL_STARTED, message=f"trial {trial} started ({variant})")
    old_phase = {r.get("name"): r.get("phase") for r in st.get("trials") or []}
    for row in d.rows:
        if row.get("phase") == c.FAILED and old_phase.get(row["name"]) != c.FAILED:
            kopf.warn(body, reason=REASON_TRIAL_FAILED, message=row.get("message") or row["name"])
    old_conds = {x.get("type"): x for x in st.get("conditions") or []}
    for type_, value, reason, message in d.conditions:
        old = old_conds.get(type_) or {}
        if value == "False" and (old.get("status"), old.get("reason")) != ("False", reason):
            kopf.warn(body, reason=reason, message=message)
    if d.phase == c.SUCCEEDED:
        kopf.info(body, reason=REASON_DECIDED, message=d.message)
    elif d.phase == c.FAILED:
        kopf.warn(body, reason=d.reason, message=d.message)


# -- metrics, from the watch ----------------------------------------------------------


def observe_metrics(body: dict[str, Any], event: str | None) -> None:
    """Export an Experiment's gauges from its status as the watch delivers it (also the
    initial list after a restart); remove them when it is deleted."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    if event == "DELETED":
        for phase in TRIAL_PHASES:
            with contextlib.suppress(KeyError):  # never exported
                METRICS["sailvl_experiment_trials"].remove(ns, name, phase)
        with contextlib.suppress(KeyError):
            METRICS["sailvl_experiment_best_score"].remove(ns, name)
        return
    rows = (body.get("status") or {}).get("trials") or []
    counts = Counter(r.get("phase") or c.PENDING for r in rows)
    for phase in TRIAL_PHASES:
        METRICS.labels("sailvl_experiment_trials", namespace=ns, experiment=name, phase=phase).set(
            counts[phase]
        )
    best = best_score(rows)
    if best is not None:
        METRICS.labels("sailvl_experiment_best_score", namespace=ns, experiment=name).set(best)


def best_score(rows: list[dict[str, Any]]) -> float | None:
    """The highest selection-metric score of the succeeded trials, or None."""
    scores = [
        float(r["overall"])
        for r in rows
        if r.get("phase") == c.SUCCEEDED and r.get("overall") is not None
    ]
    return max(scores, default=None)
