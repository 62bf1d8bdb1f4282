"""TrainConfig: everything one stage run needs, built from the resolved TrainStage spec.

Config flows one way: job config file -> `TrainStageSpec` (validated by sailvl.api) ->
`TrainConfig` (this module, plus the world size the launcher knows) -> components. The
dataclass is flat on purpose: every knob a component reads is one named field here, and
`__post_init__` rejects values that could never run, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sailvl.train.schedule import per_rank_batch

CAPTION, CONVERSATION = "caption", "conversation"


@dataclass(frozen=True, kw_only=True)
class DataSourceConfig:
    """One dataset of the mixture."""

    uri: str  # dataset prefix holding manifest.json
    weight: float = 1.0  # sampling weight in the mix
    name: str = ""  # label (defaults to the URI)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training stage, resolved (presets applied) and sized for a world."""

    name: str = "stage"  # TrainStage name (metrics label, log prefix)
    namespace: str = "default"  # TrainStage namespace (metrics label)
    stage: str | None = None  # Table 3 preset name, if any
    model_preset: str = "tiny"  # sailvl.model.presets name
    init_uri: str | None = None  # whole checkpoint (previous stage's final/)
    vision_uri: str | None = None  # stage-1 vision init
    llm_uri: str | None = None  # stage-1 LLM init
    trainable: tuple[str, ...] = ("projector",)  # modules that train
    data: tuple[DataSourceConfig, ...] = ()  # the mixture
    text_mode: str = CAPTION  # "caption" (pretraining) or "conversation" (SFT)
    max_tiles: int = 6  # largest tile grid (thumbnail extra)
    use_thumbnail: bool = True  # add a whole-image tile to multi-tile grids
    packing: bool = True  # pack samples into rows (False: one padded row per sample)
    max_tokens: int = 16384  # tokens per packed row
    max_images: int = 64  # image tiles per packed row
    micro_batch: int = 1  # samples per padded micro-batch when packing is off
    loss_weighting: str = "square"  # token | sample | square
    budget_kind: str = "steps"  # tokens | samples | steps
    budget: int = 1  # the budget in its unit
    lr: float = 1e-4  # peak learning rate
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    warmup_ratio: float = 0.03  # warmup steps as a fraction of the total
    weight_decay: float = 0.05  # AdamW weight decay
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    grad_clip: float = 1.0  # global gradient norm clip
    global_batch: int = 8  # samples per optimizer step, all ranks
    zero_stage: int = 2  # DeepSpeed ZeRO stage
    precision: str = "auto"  # bf16 | fp16 | fp32 | auto
    accelerator: str = "cpu"  # nvidia | ascend | cpu
    world_size: int = 1  # workers in the group
    checkpoint_interval: int = 500  # steps between step checkpoints
    checkpoint_keep: int = 3  # step checkpoints retained
    export_kind: str | None = None  # tokens | steps: keep export/<mark>/ (None: none)
    export_interval: int = 0  # export every this many tokens or steps
    output: str = ""  # output URI: step-<n>/, latest, final/, exports/
    seed: int = 1234  # seed of init, data order and RNG
    extra: dict[str, Any] = field(default_factory=dict)  # free-form (tests, benchmarks)

    def __post_init__(self) -> None:
        if not self.output:
            raise ValueError("output: must be set")
        if not self.data:
            raise ValueError("data: at least one source is required")
        if self.text_mode not in (CAPTION, CONVERSATION):
            raise ValueError(f"text_mode: {self.text_mode!r} not in caption|conversation")
        if self.budget_kind not in ("tokens", "samples", "steps"):
            raise ValueError(f"budget_kind: {self.budget_kind!r} not in tokens|samples|steps")
        if self.budget < 1:
            raise ValueError(f"budget: must be >= 1, got {self.budget}")
        if self.zero_stage not in (1, 2, 3):
            raise ValueError(f"zero_stage: {self.zero_stage} not in 1, 2, 3")
        if self.world_size < 1:
            raise ValueError("world_size: must be >= 1")
        if self.checkpoint_interval < 1 or self.checkpoint_keep < 1:
            raise ValueError("checkpoint_interval / checkpoint_keep: must be >= 1")
        if self.export_kind not in (None, "tokens", "steps"):
            raise ValueError(f"export_kind: {self.export_kind!r} not in tokens|steps")
        if self.export_kind is not None and self.export_interval < 1:
            raise ValueError(f"export_interval: must be >= 1, got {self.export_interval}")
        if not self.trainable:
            raise ValueError("trainable: at least one module")
        per_rank_batch(self.global_batch, self.world_size)  # PlanError names globalBatch

    @property
    def per_rank_batch(self) -> int:
        """Samples each rank takes per optimizer step."""
        return self.global_batch // self.world_size


def from_spec(
    spec: Any, *, name: str, namespace: str, world_size: int, **extra: Any
) -> TrainConfig:
    """TrainConfig from a (resolved) `sailvl.api.train.TrainStageSpec`."""
    spec = spec.resolved()
    budget = spec.budget
    kind = next(k for k in ("tokens", "samples", "steps") if getattr(budget, k) is not None)
    stage = spec.preset
    if stage is not None:
        text_mode = CAPTION if stage.startswith("pretrain") else CONVERSATION
    else:
        text_mode = CONVERSATION if "llm" in spec.trainable else CAPTION
    data = []
    for d in spec.data:
        if d.uri is None:
            raise ValueError(f"data: source {d.name or '?'} has no uri (fromStep unresolved)")
        data.append(DataSourceConfig(uri=d.uri, weight=d.weight, name=d.name or d.uri))
    opt = spec.optimizer
    return TrainConfig(
        name=name,
        namespace=namespace,
        stage=stage,
        model_preset=spec.model.preset,
        init_uri=spec.model.init,
        vision_uri=spec.model.vision,
        llm_uri=spec.model.llm,
        trainable=tuple(spec.trainable),
        data=tuple(data),
        text_mode=extra.pop("text_mode", text_mode),
        max_tiles=spec.max_tiles,
        use_thumbnail=spec.use_thumbnail,
        packing=spec.packing.enabled,
        max_tokens=spec.packing.max_tokens,
        max_images=spec.packing.max_images,
        micro_batch=spec.micro_batch,
        loss_weighting=spec.packing.loss_weighting,
        budget_kind=kind,
        budget=int(getattr(budget, kind)),
        lr=float(opt.lr),
        min_lr_ratio=opt.min_lr_ratio,
        warmup_ratio=opt.warmup_ratio,
        weight_decay=opt.weight_decay,
        betas=(float(opt.betas[0]), float(opt.betas[1])),
        grad_clip=opt.grad_clip,
        global_batch=int(spec.global_batch),
        zero_stage=spec.deepspeed.zero_stage,
        precision=spec.deepspeed.precision,
        accelerator=spec.accelerator,
        world_size=world_size,
        checkpoint_interval=spec.checkpoint.interval_steps,
        checkpoint_keep=spec.checkpoint.keep,
        export_kind=spec.checkpoint.export[0] if spec.checkpoint.export else None,
        export_interval=spec.checkpoint.export[1] if spec.checkpoint.export else 0,
        output=spec.output,
        seed=spec.seed,
        extra=extra,
    )
