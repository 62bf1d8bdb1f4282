"""EvalSuite: benchmark runs of one checkpoint, VLMEvalKit-compatible."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .benchmarks import BENCHMARKS, SCORERS, SUITES, UNDERSTANDING_SUBSET
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
    """One benchmark: a TSV of questions and the scorer that grades the answers."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Benchmark name (a known one such as docvqa, or your own with scorer set)."""
    data: Uri | None = Field(default=None, description="TSV file; default <dataRoot>/<name>.tsv")
    scorer: Scorer | None = Field(default=None, description="Defaults to the known benchmark's.")
    subset: int | None = Field(default=None, ge=1)
    """Evaluate a random subset of N rows (the understanding suite: 500), drawn with
    subsetSeed: the same rows on every run and in every pod. Unset: every row."""
    subset_seed: int = Field(default=0, ge=0)
    """Seed of the subset draw (default 0); change it for another sample of the same size."""
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    """Answer budget in tokens for this benchmark (1 to 4096).
    Unset: generation.maxNewTokens when set, else the benchmark's default.
    Defaults follow VLMEvalKit's budgets by kind: 20 for multiple choice, 100 for yes/no,
    1024 for open answers (MMVet, MathVista, DetailCaps); 64 for unknown benchmarks."""

    @model_validator(mode="after")
    def _scorer_known(self) -> BenchmarkSpec:
        if self.scorer is None and self.name not in BENCHMARKS:
            raise ValueError(f"benchmark {self.name!r} is not a known benchmark: set scorer")
        return self

    def resolved_scorer(self) -> str:
        return self.scorer or BENCHMARKS[self.name].scorer


class Judge(ApiModel):
    """An OpenAI-compatible chat endpoint that grades free-form answers."""

    endpoint: HttpUrl = Field(description="OpenAI-compatible base URL (…/v1).")
    model: str = Field(min_length=1, max_length=256)
    """Model name sent to the judge endpoint."""
    api_key_secret: SecretRef | None = Field(
        default=None,
        description="Secret holding the API key (key default apiKey); the eval pods get it "
        "as SAILVL_JUDGE_API_KEY.",
    )
    timeout_seconds: PositiveInt = 60
    """Timeout of one judge request in seconds (default 60)."""


class EvalGeneration(ApiModel):
    """Answer generation settings of the evaluated model."""

    max_new_tokens: PositiveInt | None = Field(default=None, le=4096)
    """Answer budget in tokens for every benchmark without its own maxNewTokens (1 to 4096).
    Unset: each benchmark's default (see benchmarks[].maxNewTokens)."""
    batch_size: PositiveInt = Field(default=8, le=1024)
    """Questions per forward pass (1 to 1024; default 8)."""


class EvalSuiteSpec(ApiModel):
    model: Uri = Field(description="Checkpoint to evaluate (Hugging Face format).")
    model_preset: Literal["tiny", "2b", "8b"] = "2b"
    """Size preset of the evaluated model: tiny, 2b or 8b (default 2b)."""
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=64)
    """Benchmarks to run; with suite, these are added to (and override) the suite's."""
    suite: SuiteName | None = None
    """A named benchmark set: opensource (the paper's 18), understanding (Appendix E: captions
    and OCR transcriptions, a random 500-row subset of each, for pretraining checkpoints)
    or synthetic (the demo's)."""
    data_root: Uri | None = Field(default=None, description="Folder of <benchmark>.tsv files.")
    judge: Judge | None = None
    """Judge for benchmarks scored by a model (judge scorer)."""
    parallelism: PositiveInt = Field(default=1, le=256)
    """Pods; benchmarks are spread over them (1 to 256; default 1)."""
    output: Uri = Field(description="Where predictions (JSONL per benchmark) and results.json go.")
    tokens: int | None = Field(default=None, ge=0, description="Training tokens seen (reports).")
    generation: EvalGeneration = Field(default_factory=EvalGeneration)
    """Answer generation settings."""
    accelerator: Accelerator = "nvidia"
    """Accelerator kind: nvidia (requests nvidia.com/gpu), ascend (huawei.com/Ascend910, HCCL)
    or cpu (no device). Default nvidia."""
    accelerator_type: AcceleratorType | None = None
    """Ascend only: value of the accelerator-type node label (910 vs 910B); '' for any."""
    devices_per_pod: int = Field(default=1, ge=0, le=16)
    """Accelerators per pod (0 to 16; default 1)."""
    storage_secret: StorageSecretRef | None = None
    """Secret with the object-store credentials; its keys become the pods' AWS_* variables.
    Unset: the pods use their own identity (e.g. IRSA) or none."""
    resources: Resources = Field(default_factory=Resources)
    """Container resources beyond the accelerator, which the operator requests itself."""
    template: PodOverlay = Field(default_factory=PodOverlay)
    """Additions to every pod of this resource: placement, volumes, env, labels."""

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
                subset = UNDERSTANDING_SUBSET if self.suite == "understanding" else None
                out.append(BenchmarkSpec(name=name, subset=subset))
        return out


class EvalSuiteStatus(CommonStatus):
    scores: dict[str, float] = Field(default_factory=dict)
    """Score per benchmark on a 0-100 scale (accuracy, ANLS, ... times 100)."""
    categories: dict[str, float] = Field(default_factory=dict)
    """Average score per category (General VQA, OCR VQA, Math & Knowledge, Hallucination), 0-100
    scale."""
    overall: float | None = None
    """Average of the suite's benchmark scores, 0-100 scale."""
    benchmarks_done: int | None = None
    """Benchmarks finished."""
    benchmarks_total: int | None = None
    """Benchmarks in the suite."""
    errors: dict[str, int] = Field(default_factory=dict)
    """Per benchmark, the number of questions that could not be answered or scored."""
