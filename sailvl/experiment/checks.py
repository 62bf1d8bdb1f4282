"""Semantic checks of an Experiment: every trial's children, built and checked up front.

Each trial is built as the operator will build it (:func:`.trials.trial_curriculum`,
then the Curriculum's own checks: :func:`sailvl.api.compose.check_curriculum` for what
the TrainStage / EvalSuite models refuse, :func:`sailvl.api.curriculum_checks.
curriculum_problems` for the stage plan, accelerators, pod overlays...). A child's
problem is reported at the field the user wrote: the strategy's data (a candidate, a
group, the base), ``quickQuality.samples`` for the budget, a compare plan's stage, the
anneal stage, else ``template.stage`` / ``template.eval`` / ``defaults``; and the
message names the trial, e.g. ``spec.template.stage.globalBatch: ... (trial
clean-n2k)``. The same problem in many trials is reported once.

Strategy rules the models cannot say: the strategies that choose the data refuse a
``template.stage.data`` (it would be silently replaced), quickQuality refuses a
``template.stage.budget`` (its sizes are the budget), checkpointScaling with
``interval`` needs a tokens budget of at least two intervals, compare plans must add
up to the same number of samples, and ``selection.metric`` (and correlation's
``pretrainMetric``) must be a score the eval produces. The name of the Experiment
must leave room for its longest child ``<name>-<trial>-<step>``.
"""

from __future__ import annotations

import re
from functools import partial

from pydantic import ValidationError

from sailvl.api.benchmarks import BENCHMARKS, SUITES
from sailvl.api.checks import name_limit
from sailvl.api.compose import check_curriculum
from sailvl.api.curriculum import StepEval
from sailvl.api.curriculum_checks import curriculum_problems
from sailvl.api.experiment import ExperimentSpec
from sailvl.api.kube import DNS1035_LABEL
from sailvl.api.validation import SpecError

from .trials import (
    EXPORT_FIELD,
    PRETRAIN_EVAL,
    Trial,
    _batch_and_steps,
    child_name,
    child_spec,
    scaling_marks,
    trial_curriculum,
    trial_steps,
    trials,
)

_STAGE = re.compile(r"^\.stages\[(\d+)\](.*)$")
_DATA = re.compile(r"^\.data\[(\d+)\](.*)$")
_INNER = re.compile(r"(?<![\w\]])\.stages\[\d+\][\w.\[\]]*")


def produced(ev: StepEval) -> set[str]:
    """Metric names an eval reports: benchmarks, their categories, overall."""
    names = {b.name for b in ev.benchmarks} | set(SUITES.get(ev.suite or "", ()))
    cats = {BENCHMARKS[n].category for n in names if n in BENCHMARKS} - {None}
    return names | {str(x) for x in cats} | {"overall"}


def _metric(metric: str, ev: StepEval, where: str, evp: str) -> list[str]:
    have = produced(ev)
    if metric.split(".")[0] in have:
        return []
    return [f"{where}: {metric!r} is not produced by {evp} (it reports: {', '.join(sorted(have))})"]


def _data_origins(exp: ExperimentSpec, trial: Trial) -> list[str]:
    """The spec path of each data entry of the trial's (first) stage."""
    s, p = exp.strategy, "spec.strategy"
    if s.quick_quality is not None:
        k = [c.name for c in s.quick_quality.candidates].index(trial.variant["candidate"])
        n = len(s.quick_quality.candidates[k].data)
        return [f"{p}.quickQuality.candidates[{k}].data[{j}]" for j in range(n)]
    if s.composition is not None:
        return [
            f"{p}.composition.groups[{g}].data[{j}]"
            for g, grp in enumerate(s.composition.groups)
            for j in range(len(grp.data))
        ]
    if s.incremental is not None:
        out = [f"{p}.incremental.base[{j}]" for j in range(len(s.incremental.base))]
        if trial.variant["candidate"] is not None:
            k = [c.name for c in s.incremental.candidates].index(trial.variant["candidate"])
            n = len(s.incremental.candidates[k].data)
            out += [f"{p}.incremental.candidates[{k}].data[{j}]" for j in range(n)]
        return out
    return []


def _stage_origin(exp: ExperimentSpec, trial: Trial, index: int, key: str) -> str:
    """Where the field ``key`` of the trial's stage ``index`` was written."""
    s, p = exp.strategy, "spec.strategy"
    if s.compare is not None:
        k = [x.name for x in s.compare.plans].index(trial.variant["plan"])
        if key in s.compare.plans[k].stages[index].source_fields():
            return f"{p}.compare.plans[{k}].stages[{index}]"
    cs = s.checkpoint_scaling
    if cs is not None and trial.name != "source" and key in cs.anneal.source_fields():
        return f"{p}.checkpointScaling.anneal"
    return "spec.template.stage"


def _where(exp: ExperimentSpec, trial: Trial, path: str) -> str:
    """The spec path of a problem found at ``path`` of the trial's Curriculum."""
    if path and not path.startswith("."):
        path = f".{path}"  # a model error's location, formatted without a prefix
    if path.startswith(".pretrainEval"):
        return f"spec.strategy.correlation{path}"
    if path == ".dataRoot":
        return "spec.evalDataRoot"
    m = _STAGE.match(path)
    if m is None:
        return f"spec{path}"
    index, rest = int(m[1]), m[2]
    if rest.startswith(".eval"):
        return f"spec.template.eval{rest[len('.eval') :]}"
    if EXPORT_FIELD in rest:
        return "spec.strategy.checkpointScaling.interval"
    if rest.startswith(".budget") and exp.strategy.quick_quality is not None:
        k = sorted(exp.strategy.quick_quality.samples).index(int(trial.variant["samples"]))
        return f"spec.strategy.quickQuality.samples[{k}]"
    d = _DATA.match(rest)
    origins = _data_origins(exp, trial)
    if d is not None and int(d[1]) < len(origins):
        return origins[int(d[1])] + d[2]
    key = rest.lstrip(".").split(".")[0].split("[")[0]
    origin = _stage_origin(exp, trial, index, "overrides")
    if key in _overrides_at(exp, origin):
        return f"{origin}.overrides{rest}"
    return _stage_origin(exp, trial, index, key) + rest


def _overrides_at(exp: ExperimentSpec, origin: str) -> dict[str, object]:
    """The ``overrides`` of the stage fragment at ``origin`` (a spec path)."""
    s = exp.strategy
    if origin.endswith("checkpointScaling.anneal") and s.checkpoint_scaling is not None:
        return s.checkpoint_scaling.anneal.overrides
    m = re.search(r"plans\[(\d+)\]\.stages\[(\d+)\]$", origin)
    if m is not None and s.compare is not None:
        return s.compare.plans[int(m[1])].stages[int(m[2])].overrides
    return exp.template.stage.overrides


def _pretrain_eval(exp: ExperimentSpec, trial: Trial) -> list[str]:
    """The problems of a correlation trial's ``pretrain-eval`` child (built outside the
    trial's Curriculum), as ``path: message`` with the trial Curriculum's paths."""
    from sailvl.api.checks import spec_problems
    from sailvl.api.validation import _problems

    where = ".pretrainEval"
    try:
        spec = child_spec(exp, trial, trial_steps(exp, trial)[0], {})
    except ValidationError as err:
        return _problems(err, where)
    out = []
    for line in spec_problems("EvalSuite", spec, prefix=""):
        path, msg = line.split(": ", 1)
        # The judge and the data root are the Experiment's; the rest is pretrainEval's.
        out.append(f"{path if path in ('.judge', '.dataRoot') else where + path}: {msg}")
    return out


def _inner(exp: ExperimentSpec, trial: Trial, m: re.Match[str]) -> str:
    return _where(exp, trial, m[0])


def _strategy_rules(exp: ExperimentSpec) -> list[str]:
    s, t = exp.strategy, exp.template.stage
    out: list[str] = []
    given = t.source_fields()
    if (s.quick_quality or s.composition or s.incremental) and "data" in given and t.data:
        out.append(
            f"spec.template.stage.data: {s.kind} chooses each trial's data itself; "
            "remove it (put the datasets in the strategy)"
        )
    if s.quick_quality is not None and t.budget is not None:
        out.append(
            "spec.template.stage.budget: quickQuality trains each trial on "
            "strategy.quickQuality.samples; remove it"
        )
    elif (s.composition or s.incremental or s.correlation) and t.budget is None:
        out.append(f"spec.template.stage.budget: {s.kind} trials need a budget")
    cs = s.checkpoint_scaling
    if cs is not None:
        if cs.anneal.budget is None and t.budget is None:
            out.append("spec.strategy.checkpointScaling.anneal.budget: required")
        if not cs.anneal.data and not t.data:
            out.append("spec.strategy.checkpointScaling.anneal.data: required (the fixed set)")
        if cs.interval is not None:
            b = t.budget
            if b is None or b.tokens is None:
                out.append(
                    "spec.template.stage.budget: checkpointScaling with interval trains the "
                    "template stage and exports every interval tokens: set budget.tokens"
                )
            elif len(scaling_marks(exp)) < 2:
                out.append(
                    f"spec.strategy.checkpointScaling.interval: {cs.interval} gives "
                    f"{len(scaling_marks(exp))} checkpoint(s) within budget.tokens "
                    f"{b.tokens}; a fit needs at least 2"
                )
            if not t.data:
                out.append("spec.template.stage.data: the source run needs its datasets")
    if s.correlation is not None and f"{t.name}-eval" == PRETRAIN_EVAL:
        out.append(
            f"spec.template.stage.name: {t.name!r} makes its eval step {PRETRAIN_EVAL!r}, "
            "the step that evaluates each checkpoint before SFT; rename the stage"
        )
    if s.correlation is not None:
        out += _metric(
            s.correlation.pretrain_metric,
            s.correlation.pretrain_eval,
            "spec.strategy.correlation.pretrainMetric",
            "correlation.pretrainEval",
        )
    out += _metric(
        exp.selection.metric, exp.template.eval, "spec.selection.metric", "template.eval"
    )
    return out


def _compare_budgets(exp: ExperimentSpec) -> list[str]:
    from .analysis import stage_samples

    cmp = exp.strategy.compare
    if cmp is None:
        return []
    totals: dict[str, int] = {}
    out = []
    for k, trial in enumerate(trials(exp)):
        try:
            sizes = stage_samples(exp, trial)
        except ValidationError:
            continue  # reported with the trial's other problems
        if any(n is None for n in sizes):
            out.append(
                f"spec.strategy.compare.plans[{k}]: a tokens budget cannot be compared; "
                "give every stage budget.samples or budget.steps"
            )
            continue
        totals[trial.name] = sum(n or 0 for n in sizes)
    every = cmp.eval_every
    for k, trial in enumerate(trials(exp)):
        if every is None or trial.name not in totals:
            continue
        cur = trial_curriculum(exp, trial, {})
        for i in range(len(cur.stages)):
            gb, _ = _batch_and_steps(cur, i)
            if gb and every % gb:
                out.append(
                    f"spec.strategy.compare.evalEvery: {every} samples is not a whole number "
                    f"of steps of plans[{k}].stages[{i}] (globalBatch {gb}): use a multiple "
                    f"of {gb}"
                )
    if len(set(totals.values())) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in totals.items())
        out.append(
            f"spec.strategy.compare.plans: the plans must train on the same total number "
            f"of samples (samples, or steps x globalBatch): {listed}"
        )
    return out


def experiment_problems(
    exp: ExperimentSpec, prefix: str = "spec", name: str | None = None
) -> list[str]:
    """Every problem of an Experiment (module docstring), ``path: message`` lines."""
    out = _strategy_rules(exp)
    if out:  # the trials cannot be built meaningfully
        return out
    out += _compare_budgets(exp)
    room: tuple[int, str] | None = None
    found: dict[str, list[str]] = {}  # problem -> trials that have it
    for trial in trials(exp):
        try:
            cur = trial_curriculum(exp, trial, {})
            check_curriculum(cur, prefix="")
            lines = curriculum_problems(cur, prefix="")
        except SpecError as err:
            lines = err.problems
        except ValidationError as err:
            from sailvl.api.validation import _problems

            lines = _problems(err, "")
        if exp.strategy.correlation is not None and not lines:
            lines = _pretrain_eval(exp, trial)
        for line in lines:
            path, msg = line.split(": ", 1)
            # Paths inside the message (a step-name clash names both owners) too.
            msg = _INNER.sub(partial(_inner, exp, trial), msg)
            found.setdefault(f"{_where(exp, trial, path)}: {msg}", []).append(trial.name)
        if lines:
            continue
        names = [s.name for s in trial_steps(exp, trial)]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            out.append(
                f"spec.strategy: trial {trial.name} would have two steps named {clash[0]!r} "
                "(a stage name ending like a generated step: -eval, -at<step>); rename it"
            )
            continue
        for step in trial_steps(exp, trial):
            spec = child_spec(exp, trial, step, {})
            limit, why = name_limit(step.kind, spec)
            left = limit - len(child_name("", trial.name, step.name))
            if room is None or left < room[0]:
                room = (left, f"trial {trial.name} step {step.name} creates "
                        f"{step.kind} <name>-{trial.name}-{step.name}, {why}")  # fmt: skip
    found_for = trials(exp)
    for problem, names in found.items():
        which = (
            "every trial"
            if len(names) == len(found_for) > 1
            else f"trial {names[0]}"
            if len(names) == 1
            else f"trials {', '.join(names)}"
        )
        out.append(f"{problem} ({which})")
    if name is not None:
        if not DNS1035_LABEL.match(name):
            out.append(
                f"metadata.name: {name!r} must be a DNS-1035 label (lower-case letters, "
                "digits, '-', starting with a letter): its trials' stages are TrainStages"
            )
        elif room is not None and len(name) > room[0]:
            out.append(
                f"metadata.name: {name!r} is {len(name)} characters; this Experiment's name "
                f"may be at most {max(room[0], 0)}: {room[1]}"
            )
    if prefix != "spec":
        out = [prefix + line[4:] if line.startswith("spec") else line for line in out]
    return out


def experiment_warnings(exp: ExperimentSpec, prefix: str = "spec") -> list[str]:
    """Valid but weak: quickQuality with one subset size cannot report the rank
    agreement its method assumes (paper Figure 4); incremental and composition with a
    tolerance above 10 points accept nearly anything."""
    out = []
    qq = exp.strategy.quick_quality
    if qq is not None and len(qq.samples) == 1:
        out.append(
            f"{prefix}.strategy.quickQuality.samples: one subset size; the ranking's "
            "agreement across sizes (the method's assumption) is not checked: add a "
            "smaller or larger size"
        )
    for kind in ("composition", "incremental"):
        body = getattr(exp.strategy, kind)
        if body is not None and body.tolerance > 10:
            out.append(
                f"{prefix}.strategy.{kind}.tolerance: {body.tolerance:g} points on the 0-100 "
                "scale: almost every change will be kept"
            )
    return out
