"""The Curriculum's state machine as pure functions, shared by the operator and the
local executor.

:func:`decide` looks at the curriculum spec and what each step's child reports, and
says what to do next: create the next child, wait, fail (a child failed, or an eval gate
is not met) or succeed. It is level-based: given the same inputs it gives the same
answer, so a restarted operator (or a rerun of the local executor) picks up where the
last one left off, and a missed event costs latency, never correctness.

Spec edits: each child is built from the curriculum spec at the moment it is created
and is never updated afterwards. Edits to steps not yet started take effect; edits to
steps already started or finished are ignored (their children keep their specs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from .benchmarks import aggregate
from .compose import (
    Step,
    caption_spec,
    child_name,
    eval_spec,
    final_checkpoint,
    stage_output,
    stage_spec,
    steps,
)
from .constants import (
    FAILED,
    REASON_CHILD_FAILED,
    REASON_COMPLETED,
    REASON_GATE_FAILED,
    REASON_STEP_STARTED,
    RUNNING,
    SUCCEEDED,
)
from .curriculum import CurriculumSpec, StepStatus


@dataclass
class ChildState:
    """What the operator (or the local executor) knows of one step's child."""

    phase: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    tokens: int | None = None
    message: str | None = None
    start_time: str | None = None
    completion_time: str | None = None


@dataclass(frozen=True)
class Decision:
    action: Literal["create", "wait", "fail", "succeed"]
    step: Step | None
    reason: str
    message: str


def gate_score(scores: dict[str, float], metric: str) -> float | None:
    """A benchmark's headline score, ``bench.submetric``, or an aggregate."""
    if metric in scores:
        return scores[metric]
    return aggregate(scores).get(metric)


def decide(cur: CurriculumSpec, children: dict[str, ChildState]) -> Decision:
    for step in steps(cur):
        state = children.get(step.name)
        if state is None:
            return Decision("create", step, REASON_STEP_STARTED, f"starting step {step.name}")
        if state.phase == FAILED:
            why = f": {state.message}" if state.message else ""
            return Decision("fail", step, REASON_CHILD_FAILED, f"step {step.name} failed{why}")
        if state.phase != SUCCEEDED:
            return Decision(
                "wait", step, RUNNING, f"step {step.name} is {state.phase or 'Pending'}"
            )
        gate = None
        if step.kind == "EvalSuite" and step.name != "final-eval" and step.stage_index is not None:
            gate = cur.stages[step.stage_index].gate
        if gate is not None:
            score = gate_score(state.scores, gate.metric)
            if score is None:
                return Decision(
                    "fail",
                    step,
                    REASON_GATE_FAILED,
                    f"gate of step {step.name}: metric {gate.metric} was not reported",
                )
            if score < gate.threshold:
                return Decision(
                    "fail",
                    step,
                    REASON_GATE_FAILED,
                    f"gate of step {step.name}: {gate.metric} = {score:.4g} is below the "
                    f"threshold {gate.threshold:g}",
                )
    return Decision("succeed", None, REASON_COMPLETED, "all steps succeeded")


def trained_tokens(cur: CurriculumSpec, children: dict[str, ChildState], upto: int) -> int | None:
    """Training tokens seen by the end of stage ``upto`` (for scaling-law reports)."""
    total, known = 0, False
    for st in cur.stages[: upto + 1]:
        tokens = children.get(st.name, ChildState()).tokens
        if tokens is not None:
            total, known = total + tokens, True
    return total if known else None


def child_spec(cur: CurriculumSpec, step: Step, children: dict[str, ChildState]) -> BaseModel:
    """The spec of ``step``'s child, built from the curriculum spec as it is now."""
    if step.kind == "CaptionJob":
        return caption_spec(cur)
    assert step.stage_index is not None
    if step.kind == "TrainStage":
        return stage_spec(cur, step.stage_index)
    return eval_spec(cur, step, trained_tokens(cur, children, step.stage_index))


def step_rows(
    curriculum: str, cur: CurriculumSpec, children: dict[str, ChildState]
) -> list[dict[str, Any]]:
    """One status row per step (the Curriculum's ``status.steps``)."""
    rows = []
    for step in steps(cur):
        st = children.get(step.name)
        row = StepStatus(name=step.name, kind=step.kind, child=child_name(curriculum, step.name))
        if st is not None:
            row.phase = st.phase or "Pending"
            row.scores = dict(st.scores)
            row.tokens = st.tokens
            row.start_time, row.completion_time = st.start_time, st.completion_time
            row.message = st.message
        if step.kind == "TrainStage" and st is not None and st.phase == SUCCEEDED:
            assert step.stage_index is not None
            row.checkpoint = final_checkpoint(stage_output(cur, step.stage_index))
        rows.append(row.to_dict())
    return rows
