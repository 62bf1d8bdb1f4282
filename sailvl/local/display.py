"""Progress bars for a local run (rich): one bar per step, with ETA.

The total and the completed count come from the step's status report: a TrainStage
reports ``step`` / ``totalSteps``, a CaptionJob ``shardsDone`` / ``shardsTotal``, an
EvalSuite ``benchmarksDone`` / ``benchmarksTotal``. Until the first report a bar shows
as indeterminate.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

COUNTERS = {
    "TrainStage": ("step", "totalSteps"),
    "CaptionJob": ("shardsDone", "shardsTotal"),
    "EvalSuite": ("benchmarksDone", "benchmarksTotal"),
}


def describe(kind: str, status: dict[str, Any]) -> str:
    if kind == "TrainStage" and status.get("loss") is not None:
        tps = status.get("tokensPerSecond")
        return f"loss {float(status['loss']):.3f}" + (f", {float(tps):.0f} tok/s" if tps else "")
    if kind == "CaptionJob" and status.get("samples") is not None:
        return f"{status['samples']} captions"
    if kind == "EvalSuite" and status.get("scores"):
        return ", ".join(f"{k} {float(v):.1f}" for k, v in sorted(status["scores"].items()))
    return ""


class Display:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("[bold]{task.fields[step]:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, run: Any) -> None:
        name, kind, status = run.step.name, run.step.kind, run.status
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task("", total=None, step=name, info=kind)
        done_key, total_key = COUNTERS[kind]
        total, done = status.get(total_key), status.get(done_key)
        self.progress.update(
            self.tasks[name],
            total=float(total) if total else None,
            completed=float(done or 0),
            info=describe(kind, status) or kind,
        )

    def finish(self, name: str, phase: str) -> None:
        if name in self.tasks:
            task = self.tasks[name]
            total = self.progress.tasks[task].total or 1
            self.progress.update(
                task, total=total, completed=total if phase == "Succeeded" else None, info=phase
            )
