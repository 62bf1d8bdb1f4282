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
    """The run folder of the Curriculum."""

    uri: Uri = Field(description="Run folder; step outputs go to <uri>/<step>/.")
    secret: StorageSecretRef | None = None
    """Secret with the object-store credentials; its keys become the pods' AWS_* variables.
    Unset: the pods use their own identity (e.g. IRSA) or none."""


class Gate(ApiModel):
    """A condition for going on: the stage's eval must reach metric >= threshold."""

    metric: str = Field(
        min_length=1,
        max_length=63,
        description="Benchmark name (e.g. docvqa) or aggregate (overall, a category) of the "
        "stage's eval.",
    )
    threshold: float
    """Minimum score, on the same 0-100 scale as the scores (e.g. 20 for 20%); the Curriculum
    fails with GateFailed below it."""


class StepEval(ApiModel):
    """An eval run after the stage (step <stage>-eval) on its final checkpoint."""

    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=64)
    """Benchmarks to run (added to the suite's, if set)."""
    suite: SuiteName | None = None
    """A named benchmark set: opensource, understanding or synthetic."""
    accelerator: Accelerator | None = Field(
        default=None, description="This eval's accelerator (default: defaults.accelerator)."
    )

    @model_validator(mode="after")
    def _some(self) -> StepEval:
        if not self.benchmarks and self.suite is None:
            raise ValueError("set benchmarks or suite")
        return self


class StageDefaults(ApiModel):
    """Settings every stage's TrainStage gets unless the stage overrides them."""

    accelerator: Accelerator = "nvidia"
    """Accelerator kind: nvidia (requests nvidia.com/gpu), ascend (huawei.com/Ascend910, HCCL)
    or cpu (no device). Default nvidia."""
    accelerator_type: AcceleratorType | None = None
    """Ascend only: value of the accelerator-type node label (910 vs 910B); '' for any."""
    nodes: int = Field(default=1, ge=1, le=4096)
    """Pods per stage, one per node (1 to 4096; default 1)."""
    devices_per_node: int = Field(default=8, ge=1, le=16)
    """Accelerators per pod (1 to 16; default 8)."""
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    """DeepSpeed ZeRO stage and precision."""
    packing: Packing = Field(default_factory=Packing)
    """Sequence packing."""
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    """Step checkpoint interval and retention."""
    max_restarts: int = Field(default=3, ge=0, le=100)
    """Group restarts per stage before it fails (0 to 100; default 3)."""
    queue: Queueing = Field(default_factory=Queueing)
    """Kueue queue and gang-scheduling settings."""
    template: PodOverlay = Field(default_factory=PodOverlay)
    """Additions to every pod of this resource: placement, volumes, env, labels."""


class CurriculumStage(ApiModel):
    """One training stage; it becomes the TrainStage <curriculum>-<name>."""

    name: DnsLabel
    """Step name (DNS label, at most 40 characters); also the stage's output folder
    <storage.uri>/<name>/."""
    preset: StageName | None = None
    """Table 3 stage preset: pretrain-alignment, pretrain-advance, sft-knowledge,
    sft-instruction, sft-preference; fills trainable, maxTiles, globalBatch and lr."""
    trainable: list[Module] | None = Field(default=None, min_length=1, max_length=3)
    """Modules trained (vision, projector, llm). Default: the preset's."""
    data: list[DataSource] = Field(min_length=1, max_length=64)
    """The datasets of this stage's mixture (1 to 64)."""
    max_tiles: int | None = Field(default=None, ge=1)
    """Largest tile grid per image (i*j tiles of 448 px). Default: the preset's."""
    budget: Budget
    """How long to train: exactly one of tokens, samples, steps."""
    optimizer: Optimizer = Field(default_factory=Optimizer)
    """Optimizer and learning-rate schedule (lr default: the preset's)."""
    global_batch: int | None = Field(default=None, ge=1)
    """Samples per optimizer step over all devices. Default: the preset's."""
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Any other TrainStage spec fields for this stage."
    )
    eval: StepEval | None = None
    """An eval of this stage's final checkpoint (step <name>-eval)."""
    gate: Gate | None = None
    """Go on only if the eval reaches metric >= threshold (needs eval)."""

    @model_validator(mode="after")
    def _gate_needs_eval(self) -> CurriculumStage:
        if self.gate is not None and self.eval is None:
            raise ValueError("gate needs an eval on the same stage")
        return self


class FinalEval(ApiModel):
    """The eval after the last stage (step final-eval)."""

    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=64)
    """Benchmarks to run (added to the suite's, if set)."""
    suite: SuiteName | None = None
    """A named benchmark set: opensource, understanding or synthetic."""
    accelerator: Accelerator | None = Field(
        default=None, description="This eval's accelerator (default: defaults.accelerator)."
    )


class CurriculumSpec(ApiModel):
    storage: Storage
    """Run folder (immutable) and its credentials; step <s> writes to <uri>/<s>/."""
    model: ModelRef = Field(default_factory=ModelRef)
    """The model: size preset (immutable) and the first stage's initial weights."""
    defaults: StageDefaults = Field(default_factory=StageDefaults)
    """Settings shared by every stage."""
    caption: CaptionJobSpec | None = Field(
        default=None, description="Optional caption step; its output may feed stages."
    )
    stages: list[CurriculumStage] = Field(min_length=1, max_length=16)
    """The training stages, in order (1 to 16; names unique)."""
    eval_data_root: Uri | None = Field(default=None, description="Folder of benchmark TSVs.")
    judge: Judge | None = None
    """Judge for benchmarks scored by a model."""
    eval_generation: EvalGeneration = Field(default_factory=EvalGeneration)
    """Answer generation settings of every eval step."""
    final_eval: FinalEval | None = None
    """An eval after the last stage."""

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
    """Step name (caption, a stage, <stage>-eval, final-eval)."""
    kind: str
    """Kind of the step's child: CaptionJob, TrainStage or EvalSuite."""
    child: str
    """Name of the child resource (<curriculum>-<step>)."""
    phase: str | None = None
    """The child's phase; unset until the step starts."""
    checkpoint: str | None = None
    """Final checkpoint URI of a training step."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Scores of an eval step, 0-100 scale (per benchmark and aggregate)."""
    tokens: int | None = None
    """Training tokens consumed by the step."""
    start_time: str | None = None
    """When the step's child was created (RFC 3339)."""
    completion_time: str | None = None
    """When the step finished (RFC 3339)."""
    message: str | None = None
    """Why the step failed or was skipped."""


class CurriculumStatus(CommonStatus):
    current_step: str | None = None
    """The step running now (empty when finished)."""
    steps_done: int | None = None
    """Steps that succeeded."""
    steps_total: int | None = None
    """Steps in the Curriculum."""
    steps: list[StepStatus] = Field(default_factory=list)
    """One row per step, in order."""
