"""EvalSuite: benchmark runs of one checkpoint, VLMEvalKit-compatible."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .benchmarks import BENCHMARKS, SCORERS, SUITES
from .common import (
    Accelerator,
    AcceleratorType,
    ApiModel,
    CommonStatus,
    HttpUrl,
    PodOverlay,
    PositiveInt,
    Resources,
    SecretRef,
    StorageSecretRef,
    Uri,
)

Scorer = Literal[SCORERS]  # type: ignore[valid-type]
SuiteName = Literal["opensource", "understanding", "synthetic"]


class BenchmarkSpec(ApiModel):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    data: Uri | None = Field(default=None, description="TSV file; default <dataRoot>/<name>.tsv")
    scorer: Scorer | None = Field(default=None, description="Defaults to the known benchmark's.")
    subset: int | None = Field(default=None, ge=1, description="Evaluate the first N rows.")

    @model_validator(mode="after")
    def _scorer_known(self) -> BenchmarkSpec:
        if self.scorer is None and self.name not in BENCHMARKS:
            raise ValueError(f"benchmark {self.name!r} is not a known benchmark: set scorer")
        return self

    def resolved_scorer(self) -> str:
        return self.scorer or BENCHMARKS[self.name].scorer


class Judge(ApiModel):
    endpoint: HttpUrl = Field(description="OpenAI-compatible base URL (…/v1).")
    model: str = Field(min_length=1, max_length=256)
    api_key_secret: SecretRef | None = Field(
        default=None,
        description="Secret holding the API key (key default apiKey); the eval pods get it "
        "as SAILVL_JUDGE_API_KEY.",
    )
    timeout_seconds: PositiveInt = 60


class EvalGeneration(ApiModel):
    max_new_tokens: PositiveInt = Field(default=64, le=4096)
    batch_size: PositiveInt = Field(default=8, le=1024)


class EvalSuiteSpec(ApiModel):
    model: Uri = Field(description="Checkpoint to evaluate (Hugging Face format).")
    model_preset: Literal["tiny", "2b", "8b"] = "2b"
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=64)
    suite: SuiteName | None = None
    data_root: Uri | None = Field(default=None, description="Folder of <benchmark>.tsv files.")
    judge: Judge | None = None
    parallelism: PositiveInt = Field(default=1, le=256)
    output: Uri
    tokens: int | None = Field(default=None, ge=0, description="Training tokens seen (reports).")
    generation: EvalGeneration = Field(default_factory=EvalGeneration)
    accelerator: Accelerator = "nvidia"
    accelerator_type: AcceleratorType | None = None
    devices_per_pod: int = Field(default=1, ge=0, le=16)
    storage_secret: StorageSecretRef | None = None
    resources: Resources = Field(default_factory=Resources)
    template: PodOverlay = Field(default_factory=PodOverlay)

    @model_validator(mode="after")
    def _check(self) -> EvalSuiteSpec:
        if not self.benchmarks and self.suite is None:
            raise ValueError("set benchmarks or suite")
        names = [b.name for b in self.all_benchmarks()]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"benchmark names must be unique: {sorted(dup)}")
        if self.data_root is None and any(b.data is None for b in self.all_benchmarks()):
            raise ValueError("benchmarks without data need dataRoot")
        return self

    def all_benchmarks(self) -> list[BenchmarkSpec]:
        """Explicit benchmarks plus the named suite's (the explicit entry wins)."""
        out = list(self.benchmarks)
        have = {b.name for b in out}
        for name in SUITES.get(self.suite or "", ()):
            if name not in have:
                subset = 500 if self.suite == "understanding" else None
                out.append(BenchmarkSpec(name=name, subset=subset))
        return out


class EvalSuiteStatus(CommonStatus):
    scores: dict[str, float] = Field(default_factory=dict)
    categories: dict[str, float] = Field(default_factory=dict)
    overall: float | None = None
    benchmarks_done: int | None = None
    benchmarks_total: int | None = None
    errors: dict[str, int] = Field(default_factory=dict)
