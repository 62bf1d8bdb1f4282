"""How a Curriculum unfolds into child specs: pure functions, shared by the operator and
the local executor.

Steps run in this order: ``caption`` (optional), then for each stage the stage itself
and, when it has one, ``<stage>-eval``; then ``final-eval`` (optional). A step's child is
named ``<curriculum>-<step>``; its output lives under ``<storage.uri>/<step>/`` unless
a stage's ``overrides.output`` moves it (:func:`stage_output`). A stage starts from the
previous stage's ``<output>/final/`` checkpoint (the first stage from ``model.init`` or
``model.vision`` + ``model.llm``), and a stage's eval reads the same checkpoint.
Generated step names never collide with stage names (refused by
:mod:`sailvl.api.curriculum_checks`), so each step has exactly one child.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .caption import CaptionJobSpec
from .curriculum import CurriculumSpec, CurriculumStage
from .evalsuite import BenchmarkSpec, EvalSuiteSpec
from .train import TrainStageSpec


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # CaptionJob | TrainStage | EvalSuite
    stage_index: int | None = None  # which stage a TrainStage / stage eval belongs to


def steps(cur: CurriculumSpec) -> list[Step]:
    out: list[Step] = []
    if cur.caption is not None:
        out.append(Step("caption", "CaptionJob"))
    for i, st in enumerate(cur.stages):
        out.append(Step(st.name, "TrainStage", i))
        if st.eval is not None:
            out.append(Step(f"{st.name}-eval", "EvalSuite", i))
    if cur.final_eval is not None:
        out.append(Step("final-eval", "EvalSuite", len(cur.stages) - 1))
    return out


def child_name(curriculum: str, step: str) -> str:
    return f"{curriculum}-{step}"


def step_output(cur: CurriculumSpec, step: str) -> str:
    return f"{cur.storage.uri.rstrip('/')}/{step}"


def final_checkpoint(output: str) -> str:
    return f"{output.rstrip('/')}/final"


def stage_output(cur: CurriculumSpec, index: int) -> str:
    """Where stage ``index`` writes: its ``overrides.output`` when it sets one, else
    ``<storage.uri>/<stage>``. Everything downstream (the next stage's ``model.init``,
    the stage's eval, its status row) reads ``final/`` from here, so an override moves
    the whole hand-over instead of leaving the next stage pointing at an empty folder."""
    st = cur.stages[index]
    out = st.overrides.get("output")
    return out if isinstance(out, str) else step_output(cur, st.name)


def stage_spec(cur: CurriculumSpec, index: int) -> TrainStageSpec:
    """The TrainStage spec of stage ``index``: defaults, then the stage, then overrides."""
    st: CurriculumStage = cur.stages[index]
    model = cur.model.to_dict()
    if index > 0:
        init = final_checkpoint(stage_output(cur, index - 1))
        model = {"preset": cur.model.preset, "init": init}
    data = []
    for src in st.data:
        d = src.to_dict()
        if src.from_step is not None:
            d.pop("fromStep")
            d["uri"] = _step_dataset(cur, src.from_step)
        data.append(d)
    body: dict[str, Any] = cur.defaults.to_dict()
    stage = st.to_dict()
    for key in ("name", "eval", "gate", "overrides"):
        stage.pop(key, None)
    body.update(stage)
    body.update(
        {"model": model, "data": data, "output": step_output(cur, st.name), "preset": st.preset}
    )
    if cur.storage.secret is not None:
        body["storageSecret"] = cur.storage.secret.to_dict()
    body = _deep_merge(body, st.overrides)
    return TrainStageSpec.model_validate({k: v for k, v in body.items() if v is not None})


def caption_spec(cur: CurriculumSpec) -> CaptionJobSpec:
    """The caption step's spec: the curriculum's ``caption`` with what it leaves unset
    taken from the curriculum (accelerator and acceleratorType from ``defaults``, the
    pod template from ``defaults.template``, the storage Secret from ``storage``), so an
    Ascend curriculum captions on Ascend with the same credentials as its stages."""
    assert cur.caption is not None
    cap = cur.caption
    body = cap.to_dict()
    given = cap.model_fields_set
    if "accelerator" not in given:
        body["accelerator"] = cur.defaults.accelerator
    if "accelerator_type" not in given and cur.defaults.accelerator_type is not None:
        body["acceleratorType"] = cur.defaults.accelerator_type
    if "template" not in given:
        body["template"] = cur.defaults.template.to_dict()
    if "storage_secret" not in given and cur.storage.secret is not None:
        body["storageSecret"] = cur.storage.secret.to_dict()
    return CaptionJobSpec.model_validate(body)


def _step_dataset(cur: CurriculumSpec, step: str) -> str:
    if step == "caption" and cur.caption is not None:
        return cur.caption.output
    names = [s.name for s in cur.stages]
    return stage_output(cur, names.index(step)) if step in names else step_output(cur, step)


def eval_spec(cur: CurriculumSpec, step: Step, tokens: int | None = None) -> EvalSuiteSpec:
    """The EvalSuite spec of an eval step: it evaluates its stage's final checkpoint."""
    assert step.stage_index is not None
    stage = cur.stages[step.stage_index]
    if step.name == "final-eval":
        assert cur.final_eval is not None
        benchmarks: list[BenchmarkSpec] = cur.final_eval.benchmarks
        suite, accel = cur.final_eval.suite, cur.final_eval.accelerator
    else:
        assert stage.eval is not None
        benchmarks, suite = stage.eval.benchmarks, stage.eval.suite
        accel = stage.eval.accelerator
    accel = accel or cur.defaults.accelerator
    body: dict[str, Any] = {
        "model": final_checkpoint(stage_output(cur, step.stage_index)),
        "modelPreset": cur.model.preset,
        "benchmarks": [b.to_dict() for b in benchmarks],
        "suite": suite,
        "dataRoot": cur.eval_data_root,
        "judge": cur.judge.to_dict() if cur.judge else None,
        "output": step_output(cur, step.name),
        "tokens": tokens,
        "generation": cur.eval_generation.to_dict(),
        "accelerator": accel,
        "acceleratorType": cur.defaults.accelerator_type,
        "devicesPerPod": 0 if accel == "cpu" else 1,
        "template": cur.defaults.template.to_dict(),
    }
    if cur.storage.secret is not None:
        body["storageSecret"] = cur.storage.secret.to_dict()
    return EvalSuiteSpec.model_validate({k: v for k, v in body.items() if v is not None})


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def check_curriculum(cur: CurriculumSpec, prefix: str = "spec") -> None:
    """Build every child spec once so a stage that could never run fails up front."""
    from .validation import SpecError, _problems

    problems: list[str] = []
    for step in steps(cur):
        where = f"{prefix}.stages[{step.stage_index}]"
        try:
            if step.kind == "CaptionJob":
                where = f"{prefix}.caption"
                caption_spec(cur)
            elif step.kind == "TrainStage" and step.stage_index is not None:
                stage_spec(cur, step.stage_index)
            elif step.kind == "EvalSuite":
                where = f"{prefix}.finalEval" if step.name == "final-eval" else where + ".eval"
                eval_spec(cur, step)
        except ValidationError as err:
            problems += _problems(err, where)
    if problems:
        raise SpecError(problems)
