"""Semantic checks of a Curriculum: its generated steps, gates and children, up front.

A Curriculum is checked through what it will create: every child spec is built as the
operator would build it (:func:`sailvl.api.flow.child_spec`) and put through the same
checks as a TrainStage / EvalSuite / CaptionJob applied on its own
(:func:`sailvl.api.checks.spec_problems`), so a stage the trainer would refuse at
start-up fails the Curriculum before its first child exists. A child's problem is
reported at the field the user wrote: a stage's ``overrides`` when it sets that field,
else ``defaults`` for the fields that come from there, else the stage itself.

Besides: generated step names must not collide with stage names (``x-eval`` next to a
stage ``x`` with an eval; ``final-eval``); a gate must name a metric its eval produces
and a threshold it can reach. Gate scores are on the 0-100 scale (MME 0-2800, OCRBench
0-1000: :data:`sailvl.api.benchmarks.NORMALISE`), so a threshold <= 1 is almost surely
a fraction meant as a percentage: :func:`curriculum_warnings` says so (``sailvl
validate`` prints it, the operator posts it as a warning event) without refusing it.
"""

from __future__ import annotations

from pydantic import ValidationError

from .benchmarks import BENCHMARKS, CATEGORIES, NORMALISE, SUITES
from .checks import name_limit, spec_problems
from .compose import Step, child_name, steps
from .curriculum import CurriculumSpec, CurriculumStage, StageDefaults

_DEFAULTS = {f.alias or k for k, f in StageDefaults.model_fields.items()}


def produced_metrics(stage: CurriculumStage) -> set[str]:
    """Metric names the stage's eval reports: benchmarks, their categories, overall."""
    if stage.eval is None:
        return set()
    names = {b.name for b in stage.eval.benchmarks} | set(SUITES.get(stage.eval.suite or "", ()))
    cats = {BENCHMARKS[n].category for n in names if n in BENCHMARKS} - {None}
    return names | {str(x) for x in cats} | ({"overall"} if cats else set())


def metric_scale(metric: str) -> float | None:
    """The top of a gate metric's scale (100, MME 2800, OCRBench 1000); None if unknown."""
    if metric in CATEGORIES or metric == "overall":
        return 100.0
    if "." in metric:
        return None  # a sub-metric (pope.f1, mme.perception): its own scale
    return 100.0 * NORMALISE.get(metric, 1.0)


def _gates(cur: CurriculumSpec, prefix: str) -> list[str]:
    out = []
    for i, st in enumerate(cur.stages):
        if st.gate is None or st.eval is None:
            continue
        have = produced_metrics(st)
        metric, top = st.gate.metric, metric_scale(st.gate.metric)
        if metric.split(".")[0] not in have:
            out.append(
                f"{prefix}.stages[{i}].gate.metric: {metric!r} is not produced by this "
                f"stage's eval (it reports: {', '.join(sorted(have))})"
            )
        elif top is not None and st.gate.threshold > top:
            out.append(
                f"{prefix}.stages[{i}].gate.threshold: {st.gate.threshold:g} can never be "
                f"met: {metric} is scored 0-{top:g}"
            )
    return out


def curriculum_warnings(cur: CurriculumSpec, prefix: str = "spec") -> list[str]:
    """Suspicious but valid: gate thresholds <= 1 on a 0-100 (or larger) scale."""
    out = []
    for i, st in enumerate(cur.stages):
        if st.gate is None or (top := metric_scale(st.gate.metric)) is None:
            continue
        if st.gate.threshold <= 1:
            t = st.gate.threshold
            hint = (
                "can never fail"
                if t <= 0
                else f"is {t * 100 / top:.2g}% of the scale; write {t * top:g} for {t:g} of it"
            )
            out.append(
                f"{prefix}.stages[{i}].gate.threshold: {t:g} on {st.gate.metric}, which is "
                f"scored 0-{top:g}: the gate {hint}"
            )
    return out


def _collisions(cur: CurriculumSpec, prefix: str) -> list[str]:
    """A step name generated for one thing and used by another (its child would be one
    object with two meanings: the second create is a 409 and the step looks done)."""
    owners: dict[str, list[str]] = {}
    every = steps(cur)
    for n, s in enumerate(every):
        if s.kind == "TrainStage":
            what = f"stage {s.name!r} ({prefix}.stages[{s.stage_index}].name)"
        elif cur.final_eval is not None and n == len(every) - 1:
            what = f"the final eval step ({prefix}.finalEval)"
        elif s.kind == "EvalSuite":
            what = f"the eval step generated for {prefix}.stages[{s.stage_index}].eval"
        else:
            what = f"the caption step ({prefix}.caption)"
        owners.setdefault(s.name, []).append(what)
    out = []
    for step, who in owners.items():
        if len(who) > 1:
            named = [i for i, st in enumerate(cur.stages) if st.name == step]
            where = f"{prefix}.stages[{named[0]}].name" if named else f"{prefix}.stages"
            out.append(
                f"{where}: step name {step!r} is used by {' and by '.join(who)}; rename the stage"
            )
    return out


def _origin(cur: CurriculumSpec, step: Step, key: str, prefix: str) -> str:
    """Where the user wrote field ``key`` of ``step``'s child spec."""
    if step.kind == "CaptionJob":
        given = cur.caption.model_fields_set if cur.caption is not None else set()
        if key == "template" and "template" not in given:
            return f"{prefix}.defaults"  # the caption step inherits defaults.template
        return f"{prefix}.caption"
    i = step.stage_index
    assert i is not None
    st = cur.stages[i]
    if step.kind == "EvalSuite":
        if key == "judge":
            return prefix
        if key in ("template", "resources"):
            return f"{prefix}.defaults"
        return f"{prefix}.finalEval" if step.name == "final-eval" else f"{prefix}.stages[{i}].eval"
    given = {f.alias or k for k, f in type(st).model_fields.items() if k in st.model_fields_set}
    if key in st.overrides:
        return f"{prefix}.stages[{i}].overrides"
    if key in _DEFAULTS and key not in given:
        return f"{prefix}.defaults"
    if key == "model" and i == 0:
        return prefix  # the first stage starts from the curriculum's model
    return f"{prefix}.stages[{i}]"


def _children(cur: CurriculumSpec, prefix: str, name: str | None) -> list[str]:
    from .flow import child_spec

    out: list[str] = []
    shortest: tuple[int, str] | None = None
    for step in steps(cur):
        try:
            spec = child_spec(cur, step, {})
        except ValidationError:
            continue  # reported by compose.check_curriculum
        for line in spec_problems(step.kind, spec, prefix=""):
            path, msg = line.split(": ", 1)
            key = path.lstrip(".").split(".")[0].split("[")[0]
            full = f"{_origin(cur, step, key, prefix)}{path}"
            out.append(f"{full}: {msg}")
        limit, why = name_limit(step.kind, spec)
        room = limit - len(step.name) - 1
        if shortest is None or room < shortest[0]:
            shortest = (room, f"step {step.name!r} creates {step.kind} <name>-{step.name}, {why}")
    if name is not None:
        out += _name(cur, name, shortest)
    return list(dict.fromkeys(out))


def _name(cur: CurriculumSpec, name: str, shortest: tuple[int, str] | None) -> list[str]:
    from .kube import DNS1035_LABEL, DNS1123_LABEL

    letter = any(s.kind == "TrainStage" for s in steps(cur))
    rule = DNS1035_LABEL if letter else DNS1123_LABEL
    if not rule.match(child_name(name, "x")):
        return [
            f"metadata.name: {name!r} must be a DNS label (lower-case letters, digits, '-'"
            f"{', starting with a letter: its stages get headless Services' if letter else ''}"
            "): its children are named <name>-<step>"
        ]
    if shortest is not None and len(name) > shortest[0]:
        return [
            f"metadata.name: {name!r} is {len(name)} characters; this Curriculum's name may "
            f"be at most {max(shortest[0], 0)}: {shortest[1]}"
        ]
    return []


def curriculum_problems(
    cur: CurriculumSpec, prefix: str = "spec", name: str | None = None
) -> list[str]:
    """Every semantic problem of a Curriculum (see the module docstring)."""
    return _collisions(cur, prefix) + _gates(cur, prefix) + _children(cur, prefix, name)
