"""An Experiment's trials and its state machine, as pure functions shared by the
operator and the local executor (``sailvl run``).

Trials. :func:`trials` lists them from the spec alone (names, what each varies, what
each waits for); the list never depends on results, so a restarted operator finds the
same trials under the same names. A trial is a short Curriculum: its training chain is
built by :func:`trial_curriculum` with the Curriculum's own composition
(:mod:`sailvl.api.compose`: ``defaults`` -> template stage -> the variation ->
``overrides``), its storage is ``<storage.uri>/<trial>``, and its steps are the
Curriculum's steps (``train``, ``train-eval``; compare chains one stage per plan stage,
each with its eval), preceded by ``pretrain-eval`` in a correlation trial. The child of
step ``s`` of trial ``t`` is named ``<experiment>-<t>-<s>`` (:func:`child_name`) and
writes to ``<storage.uri>/<t>/<s>/``.

========================  ====================================  =========================
strategy                  trials                                variation
========================  ====================================  =========================
quickQuality              ``<candidate>-n<N>`` per size N        data = candidate,
                                                                 budget.samples = N
composition               ``base``, ``half-<group>``             one group's weights x
                                                                 factor
incremental               ``base``, ``add-<candidate>``          base + accepted so far +
                          (one after the other)                  the candidate
checkpointScaling         ``source`` (interval only),            start from the checkpoint,
                          ``anneal-<checkpoint>``                anneal stage
correlation               ``<checkpoint>``                       start from the checkpoint
compare                   ``<plan>``                             the plan's stages
========================  ====================================  =========================

Results. The caller passes what it knows of every child that exists, as
``{trial: {step: ChildState}}`` (:class:`sailvl.api.flow.ChildState`: phase, scores,
tokens, message). :func:`decide` is level-based like the Curriculum's: the same inputs
give the same answer, so a restart or a missed event costs latency, never a duplicate.
It returns the children to create now (at most ``parallelism`` trials active; the
next step of an active trial is always allowed), the status table (one row per trial),
the phase, and, once every trial is finished, the strategy's decision
(:mod:`sailvl.experiment.analysis`). A child spec is built when it is created
(:func:`child_spec`), from the spec and the results as they are then: an incremental
trial's data list depends on which earlier candidates were accepted.

Failures. A failed trial is a row with phase Failed; the others go on. A trial whose
``needs`` (e.g. ``base`` for incremental and composition, ``source`` for
checkpointScaling) failed is Skipped. The strategy decides over the trials that
succeeded and fails the Experiment only when it cannot decide (e.g. the base failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sailvl.api import constants as c
from sailvl.api.benchmarks import aggregate, normalised
from sailvl.api.compose import Step, _deep_merge, eval_spec, stage_output, stage_spec, steps
from sailvl.api.curriculum import CurriculumSpec
from sailvl.api.experiment import ExperimentSpec, TrialStage, TrialStatus
from sailvl.api.flow import ChildState

SKIPPED = "Skipped"
#: Reason of a finished Experiment whose strategy could not decide (e.g. the base failed).
REASON_NO_DECISION = "NoDecision"
TRIAL_DONE = (c.SUCCEEDED, c.FAILED, SKIPPED)
PRETRAIN_EVAL = "pretrain-eval"
#: TrainStage field (under ``checkpoint``) that makes the trainer export a loadable model
#: at every multiple of N tokens to :func:`exported_checkpoint` (checkpointScaling with
#: ``interval``; the trainer side is :mod:`sailvl.train.exports`).
EXPORT_FIELD = "exportEveryTokens"

Results = dict[str, dict[str, ChildState]]


@dataclass(frozen=True)
class Trial:
    """One trial: a name (a DNS label), what it varies, what it waits for."""

    name: str
    variant: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    needs: tuple[str, ...] = ()
    """Trials that must have Succeeded first (a failed one skips this trial)."""
    after: tuple[str, ...] = ()
    """Trials that must have finished first, whatever their outcome (incremental order)."""


@dataclass(frozen=True)
class TrialStep:
    """A step of a trial: its child is ``<experiment>-<trial>-<name>``."""

    name: str
    kind: str  # TrainStage | EvalSuite
    stage_index: int | None = None
    export_step: int | None = None
    """compare.evalEvery: this eval scores the stage's export at this optimizer step."""


def child_name(experiment: str, trial: str, step: str) -> str:
    return f"{experiment}-{trial}-{step}"


def compact(n: int) -> str:
    """2000 -> 2k, 2000000 -> 2m, 131000000000 -> 131b; other numbers as they are."""
    for div, suffix in ((10**12, "t"), (10**9, "b"), (10**6, "m"), (10**3, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def exported_checkpoint(output: str, tokens: int) -> str:
    """Where the trainer exports the loadable model of the ``tokens`` mark (a multiple of
    ``checkpoint.exportEveryTokens``): ``<output>/export/tokens-<mark>``, written after
    the first step whose cumulative tokens reach the mark (Hugging Face layout, like
    final/; :func:`sailvl.train.exports.export_uri`). The name carries the mark, not the
    step, so the operator knows it from the spec without reading storage."""
    return f"{output.rstrip('/')}/export/tokens-{tokens}"


def scaling_marks(exp: ExperimentSpec) -> list[int]:
    """Token marks of a checkpointScaling run with ``interval``: interval, 2 x interval,
    ... up to the template stage's token budget."""
    cs = exp.strategy.checkpoint_scaling
    budget = exp.template.stage.budget
    if cs is None or cs.interval is None or budget is None or budget.tokens is None:
        return []
    return [cs.interval * k for k in range(1, budget.tokens // cs.interval + 1)]


def trials(exp: ExperimentSpec) -> list[Trial]:
    """Every trial of the experiment, in the order they start."""
    s = exp.strategy
    if s.quick_quality is not None:
        qq = s.quick_quality
        return [
            Trial(f"{cand.name}-n{compact(n)}", {"candidate": cand.name, "samples": n})
            for n in sorted(qq.samples)
            for cand in qq.candidates
        ]
    if s.composition is not None:
        out = [Trial("base", {"group": None, "factor": 1.0})]
        for g in s.composition.groups:
            out.append(Trial(f"half-{g.name}", {"group": g.name, "factor": s.composition.factor}))
        return out
    if s.incremental is not None:
        out = [Trial("base", {"candidate": None})]
        prev = "base"
        for cand in s.incremental.candidates:
            name = f"add-{cand.name}"
            out.append(Trial(name, {"candidate": cand.name}, needs=("base",), after=(prev,)))
            prev = name
        return out
    if s.checkpoint_scaling is not None:
        cs = s.checkpoint_scaling
        if cs.checkpoints is not None:
            return [
                Trial(f"anneal-{ck.name}", {"checkpoint": ck.name, "tokens": ck.tokens})
                for ck in cs.checkpoints
            ]
        out = [Trial("source", {"checkpoint": None})]
        for mark in scaling_marks(exp):
            out.append(
                Trial(
                    f"anneal-{compact(mark)}",
                    {"checkpoint": f"tokens-{mark}", "tokens": mark},
                    needs=("source",),
                )
            )
        return out
    if s.correlation is not None:
        return [Trial(ck.name, {"checkpoint": ck.name}) for ck in s.correlation.checkpoints]
    assert s.compare is not None
    return [Trial(p.name, {"plan": p.name}) for p in s.compare.plans]


# -- building a trial ------------------------------------------------------------------


def _fields(stage: TrialStage) -> dict[str, Any]:
    """The fields written in a stage fragment (wire names)."""
    body = stage.to_dict()
    return {k: v for k, v in body.items() if k in stage.source_fields()}


def _stage(exp: ExperimentSpec, *layers: dict[str, Any], eval_: bool = True) -> dict[str, Any]:
    """A Curriculum stage (wire dict): the template stage, then each layer over it."""
    body = exp.template.stage.to_dict()
    for layer in layers:
        if "budget" in layer:  # one of tokens / samples / steps: replaced, not merged
            body.pop("budget", None)
        body = _deep_merge(body, layer)
    if eval_:
        body["eval"] = exp.template.eval.to_dict()
    return body


def _data(sources: list[Any], factor: float = 1.0) -> list[dict[str, Any]]:
    out = []
    for src in sources:
        d = src.to_dict()
        d["weight"] = src.weight * factor
        out.append(d)
    return out


def incremental_accepted(exp: ExperimentSpec, results: Results) -> list[str]:
    """Names of the incremental candidates accepted so far (in order), from the finished
    trials; the analysis (:func:`sailvl.experiment.analysis.incremental`) says why."""
    from .analysis import incremental_walk

    return [r["candidate"] for r in incremental_walk(exp, results) if r["accepted"]]


def trial_curriculum(exp: ExperimentSpec, trial: Trial, results: Results) -> CurriculumSpec:
    """The trial's training chain as a Curriculum (not a resource: a builder input)."""
    s = exp.strategy
    model: dict[str, Any] = exp.model.to_dict()
    stages: list[dict[str, Any]]
    if s.quick_quality is not None:
        cand = next(x for x in s.quick_quality.candidates if x.name == trial.variant["candidate"])
        over = {"data": _data(cand.data), "budget": {"samples": trial.variant["samples"]}}
        stages = [_stage(exp, over)]
    elif s.composition is not None:
        data = []
        for g in s.composition.groups:
            data += _data(
                g.data, trial.variant["factor"] if g.name == trial.variant["group"] else 1
            )
        stages = [_stage(exp, {"data": data})]
    elif s.incremental is not None:
        inc = s.incremental
        names: list[str] = []
        if trial.variant["candidate"] is not None:
            # Accepted candidates tried before this one, then this one. (Without results
            # only the structure is wanted: no walk, which itself lists the steps.)
            order = [x.name for x in inc.candidates]
            here = order.index(trial.variant["candidate"])
            accepted = incremental_accepted(exp, results) if results else []
            names = [n for n in accepted if order.index(n) < here] + [order[here]]
        data = _data(inc.base)
        for cand in inc.candidates:
            if cand.name in names:
                data += _data(cand.data)
        stages = [_stage(exp, {"data": data})]
    elif s.checkpoint_scaling is not None:
        cs = s.checkpoint_scaling
        if trial.name == "source":
            export = {"checkpoint": {EXPORT_FIELD: cs.interval}}
            stages = [_stage(exp, {"overrides": export}, eval_=False)]
        else:
            if cs.checkpoints is not None:
                ck = next(x for x in cs.checkpoints if x.name == trial.variant["checkpoint"])
                init = ck.uri
            else:
                source = f"{exp.storage.uri.rstrip('/')}/source/train"
                init = exported_checkpoint(source, int(trial.variant["tokens"]))
            model = {"preset": exp.model.preset, "init": init}
            anneal = {"name": "anneal", **_fields(cs.anneal)}
            stages = [_stage(exp, anneal)]
    elif s.correlation is not None:
        pre = next(x for x in s.correlation.checkpoints if x.name == trial.variant["checkpoint"])
        model = {"preset": exp.model.preset, "init": pre.uri}
        stages = [_stage(exp)]
    else:
        assert s.compare is not None
        plan = next(p for p in s.compare.plans if p.name == trial.variant["plan"])
        stages = [_stage(exp, _fields(st)) for st in plan.stages]
        every = s.compare.eval_every
        if every is not None:
            plain = _curriculum(exp, trial, model, stages)
            for i, body in enumerate(stages):
                gb, total = _batch_and_steps(plain, i)
                if gb and every % gb == 0 and every // gb < total:
                    export = {"checkpoint": {"exportEverySteps": every // gb}}
                    body["overrides"] = _deep_merge(body.get("overrides") or {}, export)
    return _curriculum(exp, trial, model, stages)


def _batch_and_steps(cur: CurriculumSpec, index: int) -> tuple[int | None, int]:
    """(globalBatch, optimizer steps) of a stage with a samples or steps budget; steps 0
    for a tokens budget (its step count is known only at run time)."""
    spec = stage_spec(cur, index).resolved()
    b, gb = spec.budget, spec.global_batch
    if b.steps is not None:
        return gb, b.steps
    if b.samples is not None and gb:
        return gb, -(-b.samples // gb)
    return gb, 0


def export_steps(exp: ExperimentSpec, trial: Trial) -> dict[int, list[int]]:
    """compare.evalEvery: stage index -> the steps of its exports evaluated as curve
    points (before the last step, which the stage's own eval scores)."""
    cmp = exp.strategy.compare
    if cmp is None or cmp.eval_every is None:
        return {}
    cur = trial_curriculum(exp, trial, {})
    out = {}
    for i in range(len(cur.stages)):
        k = stage_spec(cur, i).checkpoint.export_every_steps
        if k:
            _, total = _batch_and_steps(cur, i)
            out[i] = list(range(k, total, k))
    return out


def _curriculum(
    exp: ExperimentSpec, trial: Trial, model: dict[str, Any], stages: list[dict[str, Any]]
) -> CurriculumSpec:
    body: dict[str, Any] = {
        "storage": {
            "uri": f"{exp.storage.uri.rstrip('/')}/{trial.name}",
            **({"secret": exp.storage.secret.to_dict()} if exp.storage.secret else {}),
        },
        "model": model,
        "defaults": exp.defaults.to_dict(),
        "stages": stages,
        "evalDataRoot": exp.eval_data_root,
        "judge": exp.judge.to_dict() if exp.judge else None,
        "evalGeneration": exp.eval_generation.to_dict(),
    }
    return CurriculumSpec.model_validate({k: v for k, v in body.items() if v is not None})


def trial_steps(exp: ExperimentSpec, trial: Trial) -> list[TrialStep]:
    """The trial's steps in order (their structure never depends on results)."""
    cur = trial_curriculum(exp, trial, {})
    out = [TrialStep(PRETRAIN_EVAL, "EvalSuite", 0)] if exp.strategy.correlation else []
    exports = export_steps(exp, trial)
    for s in steps(cur):
        out.append(TrialStep(s.name, s.kind, s.stage_index))
        if s.kind == "TrainStage" and s.stage_index in exports:
            out += [
                TrialStep(f"{s.name}-at{n}", "EvalSuite", s.stage_index, export_step=n)
                for n in exports[s.stage_index]
            ]
    return out


def curve_samples(exp: ExperimentSpec, trial: Trial) -> dict[str, int | None]:
    """Eval step -> training samples seen by the model it scores, counted from the start
    of the trial (compare's x axis); None after a stage with a tokens budget."""
    cur = trial_curriculum(exp, trial, {})
    out: dict[str, int | None] = {}
    before: int | None = 0
    for step in trial_steps(exp, trial):
        if step.kind != "EvalSuite" or step.stage_index is None:
            continue
        gb, total = _batch_and_steps(cur, step.stage_index)
        if step.export_step is not None:
            out[step.name] = None if before is None or not gb else before + step.export_step * gb
            continue
        end = None if before is None or not gb or not total else before + total * gb
        out[step.name] = end
        before = end
    return out


def child_spec(exp: ExperimentSpec, trial: Trial, step: TrialStep, results: Results) -> BaseModel:
    """The spec of ``step``'s child, built from the spec and the results as they are now."""
    cur = trial_curriculum(exp, trial, results)
    assert step.stage_index is not None
    if step.name == PRETRAIN_EVAL:
        corr = exp.strategy.correlation
        assert corr is not None
        stage = cur.stages[0].model_copy(update={"eval": corr.pretrain_eval})
        pre = cur.model_copy(update={"stages": [stage]})
        spec = eval_spec(pre, Step(f"{stage.name}-eval", "EvalSuite", 0))
        return spec.model_copy(
            update={"model": cur.model.init, "output": f"{cur.storage.uri}/{PRETRAIN_EVAL}"}
        )
    if step.kind == "TrainStage":
        return stage_spec(cur, step.stage_index)
    if step.export_step is not None:  # compare.evalEvery: a stage's intermediate export
        name = cur.stages[step.stage_index].name
        spec = eval_spec(cur, Step(f"{name}-eval", "EvalSuite", step.stage_index))
        output = stage_output(cur, step.stage_index)
        return spec.model_copy(
            update={
                "model": f"{output}/export/step-{step.export_step}",
                "output": f"{cur.storage.uri}/{step.name}",
                "tokens": None,
            }
        )
    tokens = trial_tokens(exp, trial, results.get(trial.name, {}))
    return eval_spec(cur, Step(step.name, "EvalSuite", step.stage_index), tokens)


# -- scores ----------------------------------------------------------------------------


def metric_value(scores: dict[str, float], metric: str) -> float | None:
    """A benchmark's (or sub-metric's) score, a category, or ``overall``. ``overall`` of
    benchmarks without a category (the understanding suite) is the mean of their
    normalised scores."""
    if metric in scores:
        return float(scores[metric])
    agg = aggregate(scores)
    if metric in agg:
        return agg[metric]
    heads = {k: v for k, v in scores.items() if "." not in k}
    if metric == "overall" and heads:
        return sum(normalised(k, v) for k, v in heads.items()) / len(heads)
    return None


def trial_tokens(exp: ExperimentSpec, trial: Trial, states: dict[str, ChildState]) -> int | None:
    """Tokens on the trial's x axis: the checkpoint's for checkpointScaling, else the
    tokens its training steps reported."""
    if exp.strategy.checkpoint_scaling is not None and "tokens" in trial.variant:
        return int(trial.variant["tokens"])
    train = {s.name for s in trial_steps(exp, trial) if s.kind == "TrainStage"}
    total = [s.tokens for n, s in states.items() if n in train and s.tokens is not None]
    return sum(total) if total else None


def last_eval(
    exp: ExperimentSpec, trial: Trial, states: dict[str, ChildState]
) -> ChildState | None:
    """The state of the trial's last eval step (the one that scores the trial)."""
    evals = [s for s in trial_steps(exp, trial) if s.kind == "EvalSuite"]
    return states.get(evals[-1].name) if evals else None


# -- the state machine -----------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Create this child now."""

    trial: Trial
    step: TrialStep


@dataclass
class ExperimentDecision:
    start: list[Start]
    """Children to create now, in order (parallelism already applied)."""
    phase: str
    """Pending (nothing started yet), Running, Succeeded or Failed."""
    reason: str
    message: str
    rows: list[dict[str, Any]]
    """status.trials: one TrialStatus per trial (wire dicts)."""
    running: int
    """Trials active once ``start`` is created (at most parallelism)."""
    done: int
    result: dict[str, Any] = field(default_factory=dict)
    """The strategy's decision (status.decision); partial while trials run."""
    best: str | None = None
    conditions: list[tuple[str, str, str, str]] = field(default_factory=list)
    """Extra conditions (type, status, reason, message), e.g. RankAgreement; a False one
    is a warning the operator also posts as a Warning event."""


def trial_phase(
    exp: ExperimentSpec, trial: Trial, states: dict[str, ChildState], phases: dict[str, str]
) -> tuple[str, TrialStep | None, str | None]:
    """(phase, the step to create or running, message) of one trial. ``phases`` holds the
    phases of the trials before it (for needs / after)."""
    for need in trial.needs:
        if phases.get(need) in (c.FAILED, SKIPPED):
            return SKIPPED, None, f"trial {need} did not succeed"
    if not states:
        waiting = [t for t in trial.needs if phases.get(t) != c.SUCCEEDED]
        waiting += [t for t in trial.after if phases.get(t) not in TRIAL_DONE]
        if waiting:
            return c.PENDING, None, f"waiting for trial {waiting[0]}"
    every = trial_steps(exp, trial)
    # A step is created only after the one before it succeeded, so a later step's child
    # proves the earlier ones done: a child deleted since (by hand, by a cleanup) is not
    # created again, which would train the step a second time.
    last = max((i for i, s in enumerate(every) if s.name in states), default=-1)
    for i, step in enumerate(every):
        st = states.get(step.name)
        if st is None and i < last:
            continue
        if st is None:
            return (c.RUNNING if states else c.PENDING), step, None
        if st.phase == c.FAILED:
            why = f": {st.message}" if st.message else ""
            return c.FAILED, step, f"step {step.name} failed{why}"
        if st.phase != c.SUCCEEDED:
            return c.RUNNING, step, None
    return c.SUCCEEDED, None, None


def decide(exp: ExperimentSpec, results: Results) -> ExperimentDecision:
    """What to do now (module docstring); ``results`` = {trial: {step: ChildState}}."""
    from .analysis import analyse

    phases: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    start: list[Start] = []
    every = trials(exp)
    plan: list[tuple[Trial, str, TrialStep | None]] = []
    for trial in every:
        states = results.get(trial.name, {})
        phase, step, message = trial_phase(exp, trial, states, phases)
        phases[trial.name] = phase
        plan.append((trial, phase, step))
        ev = last_eval(exp, trial, states)
        scores = dict(ev.scores) if ev is not None and ev.phase == c.SUCCEEDED else {}
        row = TrialStatus(
            name=trial.name,
            variant=trial.variant,
            phase=phase,
            step=step.name if step is not None and phase == c.RUNNING else None,
            tokens=trial_tokens(exp, trial, states),
            scores=scores,
            overall=metric_value(scores, exp.selection.metric) if scores else None,
            message=message,
        )
        pre = states.get(PRETRAIN_EVAL)
        corr = exp.strategy.correlation
        if corr is not None and pre is not None and pre.phase == c.SUCCEEDED:
            row.pretrain = metric_value(pre.scores, corr.pretrain_metric)
        rows.append(row.to_dict())
    running = sum(1 for p in phases.values() if p == c.RUNNING)
    active = running
    for trial, phase, step in plan:
        if step is None:
            continue
        states = results.get(trial.name, {})
        if phase == c.RUNNING and step.name not in states:
            start.append(Start(trial, step))  # the next step of an active trial
        elif phase == c.PENDING and not states and active < exp.parallelism:
            start.append(Start(trial, step))
            active += 1
    done = sum(1 for p in phases.values() if p in TRIAL_DONE)
    result, best, conditions, error = analyse(exp, every, rows, results, final=done == len(every))
    if done < len(every):
        started = any(results.get(t.name) for t in every) or start
        phase = c.RUNNING if started else c.PENDING
        # Counted with the trials started now: the status is written after they are.
        message = f"{done}/{len(every)} trials done, {active} running"
        return ExperimentDecision(
            start, phase, c.RUNNING, message, rows, active, done, result, best, conditions
        )
    if error:
        return ExperimentDecision(
            [], c.FAILED, REASON_NO_DECISION, error, rows, 0, done, result, best, conditions
        )
    summary = result.get("summary", "decided")
    return ExperimentDecision(
        [], c.SUCCEEDED, c.REASON_COMPLETED, summary, rows, 0, done, result, best, conditions
    )
