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
    uri: Uri = Field(description="Captioner checkpoint (Hugging Face format).")
    preset: Literal["tiny", "2b", "8b"] | None = Field(
        default=None, description="SAIL-VL preset, for the transformers backend."
    )


class EngineSettings(ApiModel):
    tp: PositiveInt = Field(default=1, le=16, description="Tensor parallel degree.")
    batch_size: PositiveInt = Field(default=32, le=4096)
    session_len: PositiveInt = Field(default=8192, ge=256)
    cache_max_entry_count: float = Field(default=0.8, gt=0, le=1)
    max_dynamic_patch: PositiveInt = Field(default=6, le=12)


class PromptSettings(ApiModel):
    language: Literal["en", "zh", "auto"] = "auto"
    use_alt_text: bool = Field(default=True, description="Put alt-text into the prompt.")
    version: str = Field(default="v1", max_length=32)


class GenerationSettings(ApiModel):
    max_new_tokens: PositiveInt = Field(default=512, le=8192)
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    repetition_penalty: float = Field(default=1.0, gt=0, le=3)


class FilterSettings(ApiModel):
    min_chars: int = Field(default=16, ge=0)
    max_chars: PositiveInt = Field(default=8000)
    dedup: bool = True

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
    backend: Literal["lmdeploy", "transformers"] = "lmdeploy"
    accelerator: Literal["nvidia", "ascend", "cpu"] = "nvidia"
    accelerator_type: AcceleratorType | None = None
    devices_per_pod: int = Field(default=1, ge=0, le=16)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    filter: FilterSettings = Field(default_factory=FilterSettings)
    parallelism: PositiveInt = Field(default=1, le=10000, description="Pods (Job indexes).")
    shard_retries: int = Field(default=2, ge=0, le=20, description="Retries per shard.")
    backoff_limit_per_index: int = Field(default=2, ge=0, le=20)
    stats_sample: int = Field(default=1000, ge=0, description="Captions sampled for stats.")
    storage_secret: StorageSecretRef | None = None
    resources: Resources = Field(default_factory=Resources)
    template: PodOverlay = Field(default_factory=PodOverlay)

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
    shards_done: int | None = None
    shards_failed: int | None = None
    samples: int | None = None
    samples_per_second: float | None = None
    stats: dict[str, float] | None = None
