"""CaptionJob: sharded recaptioning of a dataset (the paper's data engine)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import (
    AcceleratorType,
    ApiModel,
    CommonStatus,
    PodOverlay,
    PositiveInt,
    Resources,
    StorageSecretRef,
    Uri,
)


class CaptionModel(ApiModel):
    """The captioner model."""

    uri: Uri = Field(description="Captioner checkpoint (Hugging Face format).")
    preset: Literal["tiny", "2b", "8b"] | None = Field(
        default=None, description="SAIL-VL preset, for the transformers backend."
    )


class EngineSettings(ApiModel):
    """Inference engine settings (LMDeploy's names)."""

    tp: PositiveInt = Field(default=1, le=16, description="Tensor parallel degree.")
    batch_size: PositiveInt = Field(default=32, le=4096)
    """Requests in flight per engine (1 to 4096; default 32)."""
    session_len: PositiveInt = Field(default=8192, ge=256)
    """Maximum tokens per request, prompt plus caption (default 8192)."""
    cache_max_entry_count: float = Field(default=0.8, gt=0, le=1)
    """Fraction of free accelerator memory for the KV cache (0 to 1; default 0.8)."""
    max_dynamic_patch: PositiveInt = Field(default=6, le=12)
    """Maximum 448 px tiles per image (1 to 12; default 6)."""


class PromptSettings(ApiModel):
    """How the captioning prompt is built."""

    language: Literal["en", "zh", "auto"] = "auto"
    """Caption language: en, zh, or auto (from each sample's lang column). Default auto."""
    use_alt_text: bool = Field(default=True, description="Put alt-text into the prompt.")
    version: str = Field(default="v1", max_length=32)
    """Prompt template version (default v1)."""


class GenerationSettings(ApiModel):
    """Sampling settings of the captioner."""

    max_new_tokens: PositiveInt = Field(default=512, le=8192)
    """Maximum caption length in tokens (1 to 8192; default 512)."""
    temperature: float = Field(default=0.0, ge=0, le=2)
    """Sampling temperature (0 to 2; 0 = greedy, the default)."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Nucleus sampling probability mass (0 to 1; default 1)."""
    repetition_penalty: float = Field(default=1.0, gt=0, le=3)
    """Penalty on repeated tokens (> 0 to 3; 1 = none, the default)."""


class FilterSettings(ApiModel):
    """Which generated captions are kept."""

    min_chars: int = Field(default=16, ge=0)
    """Drop captions shorter than this many characters (default 16)."""
    max_chars: PositiveInt = Field(default=8000)
    """Drop captions longer than this many characters (runaway generation; default 8000)."""
    dedup: bool = True
    """Drop exact duplicate captions (default true)."""

    @model_validator(mode="after")
    def _bounds(self) -> FilterSettings:
        if self.min_chars >= self.max_chars:
            raise ValueError("minChars must be smaller than maxChars")
        return self


class CaptionJobSpec(ApiModel):
    input: Uri = Field(description="Input dataset (manifest.json + Parquet shards).")
    input_format: Literal["dataset", "webdataset", "parquet"] = Field(
        default="dataset",
        description=(
            "How input is read: dataset (manifest.json + Parquet shards), webdataset "
            "(img2dataset tar shards under the prefix) or parquet (image or image-URL "
            "Parquet files under the prefix; file:// and s3:// URLs). Output is a dataset."
        ),
    )
    output: Uri = Field(description="Output dataset: one shard per input shard.")
    model: CaptionModel
    """The captioner checkpoint and, for transformers, its SAIL-VL preset."""
    backend: Literal["lmdeploy", "transformers"] = "lmdeploy"
    """Inference backend: lmdeploy (GPU / NPU) or transformers (anywhere, slower). Default
    lmdeploy."""
    accelerator: Literal["nvidia", "ascend", "cpu"] = "nvidia"
    """Accelerator kind: nvidia (requests nvidia.com/gpu), ascend (huawei.com/Ascend910, HCCL)
    or cpu (no device). Default nvidia."""
    accelerator_type: AcceleratorType | None = None
    """Ascend only: value of the accelerator-type node label (910 vs 910B); '' for any."""
    devices_per_pod: int = Field(default=1, ge=0, le=16)
    """Accelerators per pod (0 to 16; default 1)."""
    engine: EngineSettings = Field(default_factory=EngineSettings)
    """Inference engine settings."""
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    """Prompt language, alt-text and template version."""
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    """Sampling settings."""
    filter: FilterSettings = Field(default_factory=FilterSettings)
    """Caption filters (length, duplicates)."""
    parallelism: PositiveInt = Field(default=1, le=10000, description="Pods (Job indexes).")
    assignment: Literal["dynamic", "static"] = "dynamic"
    """How pods get shards: dynamic (default: each pod claims the next free shard on the
    output store, so fast pods take more and a straggler's shard is taken over) or static
    (pod k takes shards i with i % parallelism == k)."""
    claim_timeout_seconds: int = Field(default=7200, ge=10, le=7 * 86400)
    """Dynamic assignment: a shard claimed longer than this may be taken over by an idle pod;
    the first commit wins. Set it to 2-3 times a shard's normal duration (default 7200)."""
    max_takeovers: int = Field(default=1, ge=0, le=9)
    """Dynamic assignment: how many times one shard may be taken over (0 to 9; 0 = never
    run a shard twice at once; default 1)."""
    shard_retries: int = Field(default=2, ge=0, le=20, description="Retries per shard.")
    backoff_limit_per_index: int = Field(default=2, ge=0, le=20)
    """Pod retries per Job index before the index counts as failed (0 to 20; default 2)."""
    stats_sample: int = Field(default=1000, ge=0, description="Captions sampled for stats.")
    storage_secret: StorageSecretRef | None = None
    """Secret with the object-store credentials; its keys become the pods' AWS_* variables.
    Unset: the pods use their own identity (e.g. IRSA) or none."""
    resources: Resources = Field(default_factory=Resources)
    """Container resources beyond the accelerator, which the operator requests itself."""
    template: PodOverlay = Field(default_factory=PodOverlay)
    """Additions to every pod of this resource: placement, volumes, env, labels."""

    @model_validator(mode="after")
    def _check(self) -> CaptionJobSpec:
        if self.input.rstrip("/") == self.output.rstrip("/"):
            raise ValueError("output must differ from input")
        if self.backend == "lmdeploy" and self.accelerator == "cpu":
            raise ValueError("backend lmdeploy has no CPU engine: use accelerator nvidia/ascend")
        if self.engine.tp > max(self.devices_per_pod, 1):
            raise ValueError("engine.tp cannot exceed devicesPerPod")
        return self


class CaptionJobStatus(CommonStatus):
    shards_total: int | None = None
    """Input shards to caption."""
    shards_done: int | None = None
    """Shards captioned and committed."""
    shards_failed: int | None = None
    """Shards that failed after their retries."""
    samples: int | None = None
    """Samples captioned so far."""
    samples_per_second: float | None = None
    """Captioning throughput over all pods, samples per second."""
    stats: dict[str, float] | None = None
    """Caption statistics of a sample of the output (paper Table 1): average length, unique
    n-grams, nouns / verbs / adjectives per caption."""
