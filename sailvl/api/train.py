"""TrainStage: one SAIL-VL training stage as a DeepSpeed pod group.

Fields left unset take their value from the stage preset (paper Table 3) for the model's
size; :meth:`TrainStageSpec.resolved` returns the spec with those values filled in, and
the job config and the operator only ever see resolved specs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .common import (
    Accelerator,
    AcceleratorType,
    ApiModel,
    CommonStatus,
    DnsLabel,
    PodOverlay,
    PositiveInt,
    Queueing,
    Resources,
    StorageSecretRef,
    Uri,
)
from .presets import MODEL_LIMITS, ModelSize, Module, StageName, stage_preset


class ModelRef(ApiModel):
    """The SAIL-VL model: its size preset and where its weights come from."""

    preset: ModelSize = Field(default="2b", description="Model size preset: tiny, 2b, 8b.")
    vision: Uri | None = Field(default=None, description="Vision encoder (stage-1 init).")
    llm: Uri | None = Field(default=None, description="Language model (stage-1 init).")
    init: Uri | None = Field(default=None, description="Whole SAIL-VL checkpoint to start from.")


class DataSource(ApiModel):
    """One dataset of the stage's mixture. ``fromStep`` (Curriculum only) names an
    earlier step whose output dataset is used, e.g. the caption step."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.uri) != has(self.fromStep)",
                    "message": "exactly one of uri and fromStep must be set",
                }
            ]
        }
    )

    name: str | None = Field(default=None, max_length=63)
    """Label of this source in logs and metrics; default: derived from the URI."""
    uri: Uri | None = None
    """Dataset folder (manifest.json plus Parquet shards): file://, s3:// or hdfs://."""
    from_step: DnsLabel | None = None
    """Curriculum only: use the output dataset of this earlier step (e.g. caption) instead of a
    URI."""
    weight: float = Field(default=1.0, gt=0)
    """Relative sampling weight in the mixture (> 0; default 1): each sample is drawn from this
    source with probability weight / sum of weights."""

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        if (self.uri is None) == (self.from_step is None):
            raise ValueError("exactly one of uri and fromStep must be set")
        return self


class Budget(ApiModel):
    """How long the stage trains: exactly one of tokens, samples, steps."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.tokens) ? 1 : 0) + (has(self.samples) ? 1 : 0)"
                    " + (has(self.steps) ? 1 : 0) == 1",
                    "message": "exactly one of tokens, samples and steps must be set",
                }
            ]
        }
    )

    tokens: int | None = Field(default=None, ge=1)
    """Train until this many tokens (text plus visual) have been consumed."""
    samples: int | None = Field(default=None, ge=1)
    """Train on this many samples (conversations), rounded to whole steps of globalBatch."""
    steps: int | None = Field(default=None, ge=1)
    """Train for this many optimizer steps."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Budget:
        if sum(v is not None for v in (self.tokens, self.samples, self.steps)) != 1:
            raise ValueError("exactly one of tokens, samples and steps must be set")
        return self


class Packing(ApiModel):
    """Packing: the samples of a micro-batch are concatenated into rows of at most maxTokens
    tokens (the paper's stream accumulator)."""

    enabled: bool = True
    """Pack samples into rows (default true); false: one sample per row."""
    max_tokens: PositiveInt = Field(default=16384, ge=64, description="Tokens per packed row.")
    max_images: PositiveInt = Field(default=64, description="Images per packed row.")
    loss_weighting: Literal["token", "sample", "square"] = "square"
    """How per-token losses are averaged: token (every token equal), sample (every sample equal)
    or square (weight 1/sqrt(tokens), InternVL's default). Default square."""


class Optimizer(ApiModel):
    """AdamW with linear warm-up and cosine decay."""

    lr: float | None = Field(default=None, gt=0, le=1, description="Peak LR (preset if unset).")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    """Final learning rate as a fraction of lr (0 to 1; default 0)."""
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    """Fraction of the steps spent warming up linearly to lr (0 to <1; default 0.03)."""
    weight_decay: float = Field(default=0.05, ge=0)
    """AdamW weight decay (default 0.05)."""
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    """AdamW betas, two numbers (default [0.9, 0.999])."""
    grad_clip: float = Field(default=1.0, gt=0)
    """Gradient-norm clipping threshold (> 0; default 1.0)."""


class DeepSpeedSettings(ApiModel):
    """DeepSpeed engine settings."""

    zero_stage: Literal[1, 2, 3] = 2
    """ZeRO stage: 1 (optimizer states), 2 (plus gradients) or 3 (plus parameters) sharded over
    the devices. Default 2."""
    precision: Literal["bf16", "fp16", "fp32", "auto"] = "auto"
    """Training precision: bf16, fp16, fp32, or auto (bf16 where the device supports it, else
    fp32). Default auto."""


class CheckpointSettings(ApiModel):
    """When step checkpoints are written and how many are kept, and which intermediate
    models are exported.

    Exports (at most one of exportEveryTokens, exportEverySteps) are loadable model
    folders (Hugging Face format, like final/) kept at an interval, independent of the
    resume checkpoints: never deleted, no optimizer state. They go to
    <output>/export/tokens-<mark>/ (each multiple of exportEveryTokens, written after the
    first step whose tokens reach it) or <output>/export/step-<n>/, each followed by
    <name>.json with its step, tokens and samples. Experiments' checkpointScaling anneals
    and evaluates them."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.exportEveryTokens) && has(self.exportEverySteps))",
                    "message": "set at most one of exportEveryTokens and exportEverySteps",
                }
            ]
        }
    )

    interval_steps: PositiveInt = 500
    """Write <output>/step-<n>/ every this many steps (default 500); a restarted pod group
    resumes from the newest."""
    keep: PositiveInt = Field(default=3, description="Step checkpoints retained.")
    export_every_tokens: PositiveInt | None = None
    """Export a loadable model at every multiple of this many training tokens, to
    <output>/export/tokens-<mark>/ (unset: no token exports)."""
    export_every_steps: PositiveInt | None = None
    """Export a loadable model every this many optimizer steps, to
    <output>/export/step-<n>/ (unset: no step exports)."""

    @model_validator(mode="after")
    def _one_export(self) -> CheckpointSettings:
        if self.export_every_tokens is not None and self.export_every_steps is not None:
            raise ValueError("set at most one of exportEveryTokens and exportEverySteps")
        return self

    @property
    def export(self) -> tuple[str, int] | None:
        """(unit, interval) of the exports: ("tokens", N), ("steps", N) or None."""
        if self.export_every_tokens is not None:
            return "tokens", self.export_every_tokens
        if self.export_every_steps is not None:
            return "steps", self.export_every_steps
        return None


MAX_EXPORTS = 1000
"""Most exports a budget may imply (each is a whole model folder)."""


class TrainStageSpec(ApiModel):
    preset: StageName | None = Field(default=None, description="Table 3 stage preset.")
    model: ModelRef = Field(default_factory=ModelRef)
    """The model: size preset (immutable) and initial weights."""
    trainable: list[Module] | None = Field(default=None, min_length=1, max_length=3)
    """Modules that are trained: vision, projector, llm; the rest is frozen. Default: the
    preset's (Table 3)."""
    data: list[DataSource] = Field(min_length=1, max_length=64)
    """The datasets of this stage's mixture (1 to 64)."""
    max_tiles: int | None = Field(default=None, ge=1, description="Largest tile grid (i*j).")
    use_thumbnail: bool = True
    """Add a whole-image thumbnail tile to images split into several tiles (InternVL dynamic
    resolution; default true)."""
    packing: Packing = Field(default_factory=Packing)
    """Sequence packing of each micro-batch."""
    budget: Budget
    """How long to train: exactly one of tokens, samples, steps."""
    optimizer: Optimizer = Field(default_factory=Optimizer)
    """Optimizer and learning-rate schedule."""
    global_batch: int | None = Field(default=None, ge=1, description="Samples per step.")
    micro_batch: PositiveInt = Field(default=1, description="Packed rows per device step.")
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    """DeepSpeed ZeRO stage and precision."""
    accelerator: Accelerator = "nvidia"
    """Accelerator kind: nvidia (requests nvidia.com/gpu), ascend (huawei.com/Ascend910, HCCL)
    or cpu (no device). Default nvidia."""
    accelerator_type: AcceleratorType | None = None
    """Ascend only: value of the accelerator-type node label (910 vs 910B); '' for any."""
    nodes: int = Field(default=1, ge=1, le=4096)
    """Pods in the group, one per node (1 to 4096); rank = Job completion index."""
    devices_per_node: int = Field(default=8, ge=1, le=16)
    """Accelerators (and training processes) per pod (1 to 16; default 8)."""
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    """Step checkpoint interval and retention."""
    output: Uri = Field(
        description="Where checkpoints go (immutable): <output>/step-<n>/ while training, "
        "<output>/final/ (Hugging Face format) at the end."
    )
    seed: int = Field(default=1234, ge=0)
    """Random seed of data order and initialisation (default 1234)."""
    max_restarts: int = Field(default=3, ge=0, le=100)
    """Group restarts after a failed pod before the stage fails with MaxRestartsExceeded (0 to
    100; default 3). Each restart resumes from the newest checkpoint."""
    suspend: bool = False
    """Suspend the stage: its Job is suspended (pods deleted) until this is set back to false;
    phase Suspended."""
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    """Fail an attempt that runs longer than this many seconds (DeadlineExceeded, no restart).
    Unset: no limit."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    """Delete the finished Job (and its pods) this many seconds after it ends. Unset: kept."""
    queue: Queueing = Field(default_factory=Queueing)
    """Kueue queue and Volcano / coscheduling gang settings."""
    storage_secret: StorageSecretRef | None = None
    """Secret with the object-store credentials; its keys become the pods' AWS_* variables.
    Unset: the pods use their own identity (e.g. IRSA) or none."""
    resources: Resources = Field(default_factory=Resources)
    """Container resources beyond the accelerator, which the operator requests itself."""
    template: PodOverlay = Field(default_factory=PodOverlay)
    """Additions to every pod of this resource: placement, volumes, env, labels."""

    @model_validator(mode="after")
    def _check(self) -> TrainStageSpec:
        r = self.resolved_values()
        limits = MODEL_LIMITS[self.model.preset]
        if r.max_tiles > limits.max_tiles:
            raise ValueError(
                f"maxTiles {r.max_tiles} is larger than model {self.model.preset} allows "
                f"({limits.max_tiles})"
            )
        if r.trainable is None or r.lr is None or r.global_batch is None:
            raise ValueError(
                "without a preset, trainable, optimizer.lr and globalBatch must all be set"
            )
        if len(set(r.trainable)) != len(r.trainable):
            raise ValueError("trainable lists a module twice")
        world = self.nodes * self.devices_per_node
        if r.global_batch < world:
            raise ValueError(
                f"globalBatch {r.global_batch} is smaller than the {world} devices "
                f"(nodes x devicesPerNode): each device needs at least one sample per step"
            )
        visual = r.max_tiles * limits.tokens_per_tile + (
            limits.tokens_per_tile if self.use_thumbnail and r.max_tiles > 1 else 0
        )
        if self.packing.max_tokens < visual:
            raise ValueError(
                f"packing.maxTokens {self.packing.max_tokens} cannot hold one image of "
                f"{r.max_tiles} tiles ({visual} visual tokens)"
            )
        self._check_exports()
        if self.accelerator == "cpu" and self.deepspeed.precision in ("bf16", "fp16"):
            pass  # allowed: CPU bf16 works in torch; the runtime reports what it used
        return self

    def _check_exports(self) -> None:
        """An export interval the budget never reaches, or one that would write more than
        MAX_EXPORTS model folders, is a mistake (checked where the units agree)."""
        if self.checkpoint.export is None:
            return
        unit, every = self.checkpoint.export
        total = self.budget.tokens if unit == "tokens" else self.budget.steps
        field = "checkpoint.exportEvery" + unit.capitalize()
        if total is None:
            return
        if every > total:
            raise ValueError(
                f"{field} {every} is larger than the budget's {total} {unit}: "
                "no export would be written"
            )
        if total // every > MAX_EXPORTS:
            raise ValueError(
                f"{field} {every} would write {total // every} model folders over the "
                f"budget's {total} {unit} (at most {MAX_EXPORTS})"
            )

    def resolved_values(self) -> _Resolved:
        p = stage_preset(self.preset, self.model.preset) if self.preset else None
        return _Resolved(
            trainable=self.trainable or (list(p.trainable) if p else None),
            max_tiles=self.max_tiles or (p.max_tiles if p else 6),
            lr=self.optimizer.lr or (p.lr if p else None),
            global_batch=self.global_batch or (p.global_batch if p else None),
        )

    def resolved(self) -> TrainStageSpec:
        """The spec with every preset-derived field filled in."""
        r = self.resolved_values()
        opt = self.optimizer.model_copy(update={"lr": r.lr})
        return self.model_copy(
            update={
                "trainable": r.trainable,
                "max_tiles": r.max_tiles,
                "global_batch": r.global_batch,
                "optimizer": opt,
            }
        )


class _Resolved(ApiModel):
    trainable: list[str] | None
    max_tiles: int
    lr: float | None
    global_batch: int | None


class TrainStageStatus(CommonStatus):
    step: int | None = None
    """Optimizer steps done (reported by rank 0)."""
    total_steps: int | None = None
    """Steps the budget amounts to."""
    tokens: int | None = None
    """Tokens consumed so far (text plus visual)."""
    samples: int | None = None
    """Samples consumed so far."""
    loss: float | None = None
    """Training loss of the last logged step."""
    tokens_per_second: float | None = None
    """Training throughput over all devices, tokens per second."""
    last_checkpoint: str | None = None
    """URI of the newest step checkpoint."""
    final_checkpoint: str | None = None
    """URI of the final checkpoint (<output>/final), set on success."""
    restarts: int = 0
    """Group restarts so far (the current attempt's number); counted by the operator from the
    Jobs it created."""
    job_name: str | None = None
    """Name of the current attempt's Job (<name>-<attempt>)."""
