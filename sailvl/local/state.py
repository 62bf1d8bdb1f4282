"""The local run's memory: one JSON file, rewritten atomically after every change.

It holds, per step, what a child's status would hold on a cluster (phase, tokens,
scores, message, times) plus the loss history the executor sampled. A rerun reads it
and :func:`sailvl.api.flow.decide` continues from the first step not Succeeded; a step
that was interrupted is simply run again (the jobs themselves resume: training from
``latest``, captioning skips committed shards, evaluation skips answered rows).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sailvl.api.flow import ChildState


@dataclass
class StepRecord:
    phase: str | None = None
    tokens: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    seconds: float | None = None
    restarts: int = 0  # TrainStage runs started again after a failure (maxRestarts)
    losses: list[list[float]] = field(default_factory=list)  # [step, loss]
    status: dict[str, Any] = field(default_factory=dict)  # the job's last report

    def child(self) -> ChildState:
        return ChildState(
            phase=self.phase,
            scores=dict(self.scores),
            tokens=self.tokens,
            message=self.message,
            start_time=self.start_time,
            completion_time=self.completion_time,
        )


class RunState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: dict[str, StepRecord] = {}
        self.extra: dict[str, Any] = {}
        if path.exists():
            raw = json.loads(path.read_text())
            self.steps = {k: StepRecord(**v) for k, v in raw.get("steps", {}).items()}
            self.extra = raw.get("extra", {})

    def children(self) -> dict[str, ChildState]:
        """Finished steps only: an interrupted (Running) step is started again."""
        return {k: r.child() for k, r in self.steps.items() if r.phase in ("Succeeded", "Failed")}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"steps": {k: asdict(v) for k, v in self.steps.items()}, "extra": self.extra}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(body, fh, indent=1)
        os.replace(tmp, self.path)
