"""Curriculum: caption -> training stages -> evals, one child at a time, with gates."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from .benchmarks import AGGREGATES
from .caption import CaptionJobSpec
from .common import (
    Accelerator,
    AcceleratorType,
    ApiModel,
    CommonStatus,
    DnsLabel,
    PodOverlay,
    Queueing,
    StorageSecretRef,
    Uri,
)
from .evalsuite import BenchmarkSpec, EvalGeneration, Judge, SuiteName
from .presets import Module, StageName
from .train import (
    Budget,
    CheckpointSettings,
    DataSource,
    DeepSpeedSettings,
    ModelRef,
    Optimizer,
    Packing,
)

# Kubernetes names of children are <curriculum>-<step>; both parts are capped so that
# the Job name (which becomes a pod label value) stays within 63 characters.
MAX_CHILD_NAME = 63


class Storage(ApiModel):
    uri: Uri = Field(description="Run folder; step outputs go to <uri>/<step>/.")
    secret: StorageSecretRef | None = None


class Gate(ApiModel):
    metric: str = Field(min_length=1, max_length=63, description="Benchmark name or aggregate.")
    threshold: float


class StepEval(ApiModel):
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=64)
    suite: SuiteName | None = None
    accelerator: Accelerator | None = Field(
        default=None, description="This eval's accelerator (default: defaults.accelerator)."
    )

    @model_validator(mode="after")
    def _some(self) -> StepEval:
        if not self.benchmarks and self.suite is None:
            raise ValueError("set benchmarks or suite")
        return self


class StageDefaults(ApiModel):
    accelerator: Accelerator = "nvidia"
    accelerator_type: AcceleratorType | None = None
    nodes: int = Field(default=1, ge=1, le=4096)
    devices_per_node: int = Field(default=8, ge=1, le=16)
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    packing: Packing = Field(default_factory=Packing)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    max_restarts: int = Field(default=3, ge=0, le=100)
    queue: Queueing = Field(default_factory=Queueing)
    template: PodOverlay = Field(default_factory=PodOverlay)


class CurriculumStage(ApiModel):
    name: DnsLabel
    preset: StageName | None = None
    trainable: list[Module] | None = Field(default=None, min_length=1, max_length=3)
    data: list[DataSource] = Field(min_length=1, max_length=64)
    max_tiles: int | None = Field(default=None, ge=1)
    budget: Budget
    optimizer: Optimizer = Field(default_factory=Optimizer)
    global_batch: int | None = Field(default=None, ge=1)
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Any other TrainStage spec fields for this stage."
    )
    eval: StepEval | None = None
    gate: Gate | None = None

    @model_validator(mode="after")
    def _gate_needs_eval(self) -> CurriculumStage:
        if self.gate is not None and self.eval is None:
            raise ValueError("gate needs an eval on the same stage")
        return self


class FinalEval(ApiModel):
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=64)
    suite: SuiteName | None = None
    accelerator: Accelerator | None = Field(
        default=None, description="This eval's accelerator (default: defaults.accelerator)."
    )


class CurriculumSpec(ApiModel):
    storage: Storage
    model: ModelRef = Field(default_factory=ModelRef)
    defaults: StageDefaults = Field(default_factory=StageDefaults)
    caption: CaptionJobSpec | None = Field(
        default=None, description="Optional caption step; its output may feed stages."
    )
    stages: list[CurriculumStage] = Field(min_length=1, max_length=16)
    eval_data_root: Uri | None = Field(default=None, description="Folder of benchmark TSVs.")
    judge: Judge | None = None
    eval_generation: EvalGeneration = Field(default_factory=EvalGeneration)
    final_eval: FinalEval | None = None

    @model_validator(mode="after")
    def _check(self) -> CurriculumSpec:
        names = [s.name for s in self.stages]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stage names must be unique: {dup}")
        reserved = {"caption", "final-eval"} & set(names)
        if reserved:
            raise ValueError(f"stage names {sorted(reserved)} are reserved step names")
        for i, stage in enumerate(self.stages):
            for src in stage.data:
                if src.from_step is None:
                    continue
                if src.from_step == "caption":
                    if self.caption is None:
                        raise ValueError(
                            f"stages[{i}].data: fromStep caption, but there is no caption step"
                        )
                elif src.from_step not in names[:i]:
                    raise ValueError(
                        f"stages[{i}].data: fromStep {src.from_step!r} is not an earlier step"
                    )
            if stage.gate is not None and stage.eval is not None:
                known = {b.name for b in stage.eval.benchmarks} | set(AGGREGATES)
                if stage.eval.suite:
                    from .benchmarks import SUITES

                    known |= set(SUITES[stage.eval.suite])
                metric = stage.gate.metric.split(".")[0]
                if metric not in known:
                    raise ValueError(
                        f"stages[{i}].gate.metric {stage.gate.metric!r} is not produced by "
                        f"the stage's eval (known: {sorted(known)})"
                    )
        return self


class StepStatus(ApiModel):
    """One row per step of the curriculum."""

    name: str
    kind: str
    child: str
    phase: str | None = None
    checkpoint: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    tokens: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None


class CurriculumStatus(CommonStatus):
    current_step: str | None = None
    steps_done: int | None = None
    steps_total: int | None = None
    steps: list[StepStatus] = Field(default_factory=list)
