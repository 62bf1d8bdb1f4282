"""Composition of a Curriculum's children: a stage's ``output`` override is followed by
the next stage's init, the stage's eval and its status row; generated step names never
collide with stage names."""

from __future__ import annotations

import pytest

from sailvl.api import SpecError, parse_resource
from sailvl.api.compose import eval_spec, stage_spec, steps
from sailvl.api.flow import ChildState, step_rows

from .api_builders import curriculum, mutate

ELSEWHERE = "file:///archive/align-run"


def _cur(obj: dict | None = None):  # type: ignore[no-untyped-def]
    return parse_resource(obj or curriculum())[2]


def test_output_override_is_followed_downstream() -> None:
    cur = _cur(mutate(curriculum(), "spec.stages.0.overrides", {"output": ELSEWHERE}))
    assert stage_spec(cur, 0).output == ELSEWHERE  # type: ignore[arg-type]
    assert stage_spec(cur, 1).model.init == f"{ELSEWHERE}/final"  # type: ignore[arg-type]
    ev = next(s for s in steps(cur) if s.name == "align-eval")  # type: ignore[arg-type]
    assert eval_spec(cur, ev).model == f"{ELSEWHERE}/final"  # type: ignore[arg-type]
    rows = step_rows("demo", cur, {"align": ChildState(phase="Succeeded")})  # type: ignore[arg-type]
    assert rows[1]["checkpoint"] == f"{ELSEWHERE}/final"


def test_without_override_outputs_stay_under_storage() -> None:
    cur = _cur()
    assert stage_spec(cur, 0).output == "file:///runs/demo/align"  # type: ignore[arg-type]
    assert stage_spec(cur, 1).model.init == "file:///runs/demo/align/final"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("spec.stages.1.name", "align-eval", "spec.stages[1].name: step name 'align-eval'"),
        ("spec.stages.0.name", "sft-eval", None),  # sft has no eval: no collision
    ],
)
def test_generated_names_never_collide(path: str, value: str, needle: str | None) -> None:
    obj = mutate(curriculum(), path, value)
    if needle is None:
        names = [s.name for s in steps(_cur(obj))]  # type: ignore[arg-type]
        assert len(names) == len(set(names))
        return
    with pytest.raises(SpecError) as err:
        parse_resource(obj)
    assert needle in str(err.value)
    assert "eval step generated for spec.stages[0].eval" in str(err.value)
