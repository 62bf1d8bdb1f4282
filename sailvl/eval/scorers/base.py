"""What every scorer takes and returns, and the helpers they share.

A scorer is a pure function ``(records, judge) -> Scored``. A *record* is one benchmark
row as a ``dict`` of its TSV columns (strings; an empty cell is ``None``, as a NaN is in
VLMEvalKit's pandas frames) plus ``prediction``, the model's answer text. ``judge`` is a
:class:`~sailvl.eval.judge.Judge`-like object or ``None`` (exact matching only).

``Scored.score`` is the headline number on a 0-100 scale (the scale Table 4 averages);
``Scored.metrics`` keeps VLMEvalKit's own breakdown with VLMEvalKit's units and names
(so multiple-choice accuracies stay fractions, MME stays a sum of percentages).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

FAIL_MSG = "Failed to obtain answer via API."
"""What VLMEvalKit's API wrappers return when a call fails; judge clients return it too."""


class JudgeLike(Protocol):
    """The judge surface scorers use: one prompt in, one reply (or FAIL_MSG) out."""

    def generate(self, prompt: str, temperature: float = 0.0) -> str: ...


Record = dict[str, Any]


@dataclass(kw_only=True)
class Scored:
    """A benchmark's scores."""

    score: float | None
    """Headline score on 0-100 (None: nothing could be scored)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """VLMEvalKit-shaped breakdown (overall, per split / category, sub-metrics)."""
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Per-row outcome: ``index``, ``hit`` and what was extracted, for inspection."""
    errors: dict[str, int] = field(default_factory=dict)
    """Counts of problems met while scoring (e.g. ``judge_failed``), by kind."""

    def count(self, kind: str, n: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + n


Scorer = Callable[[Sequence[Record], JudgeLike | None], Scored]


def is_missing(value: Any) -> bool:
    """True for an empty cell: None, NaN or the empty string (pandas reads it as NaN)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value == ""


def text(value: Any) -> str:
    """``str(x)`` as VLMEvalKit applies it to predictions and answers (NaN -> 'nan')."""
    return "nan" if is_missing(value) else str(value)


def answer_list(answer: Any) -> list[str]:
    """The answers of a row: a Python-list literal is several answers, anything else one.

    VLMEvalKit ``eval``s the cell and checks for a list; ``literal_eval`` accepts the same
    literals without running code.
    """
    raw = text(answer)
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return [raw]
    if isinstance(parsed, list):
        return [str(x) for x in parsed]
    return [raw]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for an empty sequence (numpy's value, without the warning)."""
    return sum(values) / len(values) if values else math.nan


def choices_of(record: Record) -> dict[str, str]:
    """Option letter -> option text for the present (non-empty) option columns A..Z."""
    out: dict[str, str] = {}
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        value = record.get(letter)
        if not is_missing(value):
            out[letter] = str(value)
    return out


def finite_or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
