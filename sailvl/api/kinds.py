"""The four kinds: their spec / status models and CRD naming in one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from .caption import CaptionJobSpec, CaptionJobStatus
from .curriculum import CurriculumSpec, CurriculumStatus
from .evalsuite import EvalSuiteSpec, EvalSuiteStatus
from .train import TrainStageSpec, TrainStageStatus


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    # CEL rules on the spec: (rule, message); immutable fields use oldSelf.
    spec_rules: tuple[tuple[str, str], ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()


_PHASE = PrinterColumn("Phase", ".status.phase")
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
_STATE = PrinterColumn("State", ".status.conditions[-1:].type", priority=1)

KINDS: Final[dict[str, KindInfo]] = {
    "CaptionJob": KindInfo(
        kind="CaptionJob",
        plural="captionjobs",
        short_names=("cj",),
        spec=CaptionJobSpec,
        status=CaptionJobStatus,
        columns=(
            _PHASE,
            PrinterColumn("Done", ".status.shardsDone", "integer"),
            PrinterColumn("Shards", ".status.shardsTotal", "integer"),
            PrinterColumn("Samples", ".status.samples", "integer"),
            _STATE,
            _AGE,
        ),
        spec_rules=(("self.input != self.output", "output must differ from input"),),
    ),
    "TrainStage": KindInfo(
        kind="TrainStage",
        plural="trainstages",
        short_names=("ts",),
        spec=TrainStageSpec,
        status=TrainStageStatus,
        columns=(
            _PHASE,
            PrinterColumn("Preset", ".spec.preset"),
            PrinterColumn("Step", ".status.step", "integer"),
            PrinterColumn("Loss", ".status.loss", "number"),
            PrinterColumn("Restarts", ".status.restarts", "integer"),
            _STATE,
            _AGE,
        ),
        spec_rules=(
            ("self.model.preset == oldSelf.model.preset", "model.preset is immutable"),
            ("self.output == oldSelf.output", "output is immutable"),
        ),
    ),
    "EvalSuite": KindInfo(
        kind="EvalSuite",
        plural="evalsuites",
        short_names=("es",),
        spec=EvalSuiteSpec,
        status=EvalSuiteStatus,
        columns=(
            _PHASE,
            PrinterColumn("Overall", ".status.overall", "number"),
            PrinterColumn("Done", ".status.benchmarksDone", "integer"),
            _STATE,
            _AGE,
        ),
        spec_rules=(
            (
                "size(self.benchmarks) > 0 || has(self.suite)",
                "set benchmarks or suite",
            ),
        ),
    ),
    "Curriculum": KindInfo(
        kind="Curriculum",
        plural="curricula",
        short_names=("cur",),
        spec=CurriculumSpec,
        status=CurriculumStatus,
        columns=(
            _PHASE,
            PrinterColumn("Step", ".status.currentStep"),
            PrinterColumn("Done", ".status.stepsDone", "integer"),
            PrinterColumn("Total", ".status.stepsTotal", "integer"),
            _STATE,
            _AGE,
        ),
        spec_rules=(
            (
                "self.stages.all(s, self.stages.exists_one(t, t.name == s.name))",
                "stage names must be unique",
            ),
            ("self.storage.uri == oldSelf.storage.uri", "storage.uri is immutable"),
        ),
    ),
}
