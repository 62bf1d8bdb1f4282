"""The operator uses the API's validation: the same parse function for InvalidSpec, and
the same warnings as `sailvl validate` posted as warning events on a Curriculum."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.api import parse_spec
from sailvl.api.validation import REASON_SUSPICIOUS_SPEC

from .api_builders import curriculum, mutate


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    import kopf

    got: list[tuple[str, str]] = []

    def warn(body: Any, *, reason: str, message: str) -> None:
        got.append((reason, message))

    monkeypatch.setattr(kopf, "warn", warn)
    return got


def test_operator_validates_with_the_api_function() -> None:
    from sailvl_operator import children

    assert children.parse_spec is parse_spec


@pytest.mark.parametrize(
    ("threshold", "warned"), [(0.2, True), (1.0, True), (0.0, True), (20.0, False)]
)
def test_curriculum_warns_on_fraction_thresholds(
    events: list[tuple[str, str]], threshold: float, warned: bool
) -> None:
    from sailvl_operator.main import curriculum_warn

    body = mutate(curriculum(), "spec.stages.0.gate.threshold", threshold)
    curriculum_warn(body=body)
    if not warned:
        assert events == []
        return
    ((reason, message),) = events
    assert reason == REASON_SUSPICIOUS_SPEC
    assert message.startswith("spec.stages[0].gate.threshold: ")
    assert "synth-ocr, which is scored 0-100" in message


def test_invalid_curriculum_gets_no_warning_events(events: list[tuple[str, str]]) -> None:
    from sailvl_operator.main import curriculum_warn

    body = mutate(curriculum(), "spec.stages.0.gate.metric", "mmlu")
    curriculum_warn(body=body)
    assert events == []
