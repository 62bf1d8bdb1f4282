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
    uri: Uri | None = None
    from_step: DnsLabel | None = None
    weight: float = Field(default=1.0, gt=0)

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
    samples: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Budget:
        if sum(v is not None for v in (self.tokens, self.samples, self.steps)) != 1:
            raise ValueError("exactly one of tokens, samples and steps must be set")
        return self


class Packing(ApiModel):
    enabled: bool = True
    max_tokens: PositiveInt = Field(default=16384, ge=64, description="Tokens per packed row.")
    max_images: PositiveInt = Field(default=64, description="Images per packed row.")
    loss_weighting: Literal["token", "sample", "square"] = "square"


class Optimizer(ApiModel):
    lr: float | None = Field(default=None, gt=0, le=1, description="Peak LR (preset if unset).")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.05, ge=0)
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    grad_clip: float = Field(default=1.0, gt=0)


class DeepSpeedSettings(ApiModel):
    zero_stage: Literal[1, 2, 3] = 2
    precision: Literal["bf16", "fp16", "fp32", "auto"] = "auto"


class CheckpointSettings(ApiModel):
    interval_steps: PositiveInt = 500
    keep: PositiveInt = Field(default=3, description="Step checkpoints retained.")


class TrainStageSpec(ApiModel):
    preset: StageName | None = Field(default=None, description="Table 3 stage preset.")
    model: ModelRef = Field(default_factory=ModelRef)
    trainable: list[Module] | None = Field(default=None, min_length=1, max_length=3)
    data: list[DataSource] = Field(min_length=1, max_length=64)
    max_tiles: int | None = Field(default=None, ge=1, description="Largest tile grid (i*j).")
    use_thumbnail: bool = True
    packing: Packing = Field(default_factory=Packing)
    budget: Budget
    optimizer: Optimizer = Field(default_factory=Optimizer)
    global_batch: int | None = Field(default=None, ge=1, description="Samples per step.")
    micro_batch: PositiveInt = Field(default=1, description="Packed rows per device step.")
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    accelerator: Accelerator = "nvidia"
    accelerator_type: AcceleratorType | None = None
    nodes: int = Field(default=1, ge=1, le=4096)
    devices_per_node: int = Field(default=8, ge=1, le=16)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    output: Uri
    seed: int = Field(default=1234, ge=0)
    max_restarts: int = Field(default=3, ge=0, le=100)
    suspend: bool = False
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    queue: Queueing = Field(default_factory=Queueing)
    storage_secret: StorageSecretRef | None = None
    resources: Resources = Field(default_factory=Resources)
    template: PodOverlay = Field(default_factory=PodOverlay)

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
        if self.accelerator == "cpu" and self.deepspeed.precision in ("bf16", "fp16"):
            pass  # allowed: CPU bf16 works in torch; the runtime reports what it used
        return self

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
    total_steps: int | None = None
    tokens: int | None = None
    samples: int | None = None
    loss: float | None = None
    tokens_per_second: float | None = None
    last_checkpoint: str | None = None
    final_checkpoint: str | None = None
    restarts: int = 0
    job_name: str | None = None
