"""DataJob: one data-processing task over a dataset, run as a sharded Indexed Job.

One kind for the suite's data tools (``sailvl data import | score | filter``) rather
than a kind per tool: they share everything a cluster needs (input and output URIs,
shards = Job indexes, per-index retries, storage credentials, resources, the pod
overlay) and differ only in their task settings, one optional block per task. The
pods run ``sailvl data job --config FILE`` (:mod:`sailvl.data.datajob`), which calls
the same function as the local command with ``--shard-index`` = the Job completion
index and ``--shard-count`` = ``parallelism``.

- ``import``: the field's formats (LLaVA JSON, InternVL meta, WebDataset, HF Parquet)
  into the dataset format; pod k imports the input files i with i % parallelism == k,
  the last pod to finish writes the manifest.
- ``score``: Figure 10 scores from an OpenAI-protocol judge endpoint as columns; pod k
  scores input shards i % parallelism == k; the judge's key comes from a Secret.
- ``filter``: thresholds / balance over a scored dataset; one pod (``parallelism`` 1:
  the balance draw is global).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .common import (
    ApiModel,
    CommonStatus,
    PodOverlay,
    PositiveInt,
    Resources,
    StorageSecretRef,
    Uri,
)
from .evalsuite import Judge

Task = Literal["import", "score", "filter"]
Criterion = Literal["difficulty", "complexity", "relevance"]
Score = float


class ImportSettings(ApiModel):
    """How ``task: import`` reads its input (``sailvl data import``'s options)."""

    format: Literal["llava", "internvl", "webdataset", "hfparquet"] | None = None
    """Input format; unset: detected from the input's names (and a peek at JSON)."""
    image_root: Uri | None = None
    """Where relative image paths of LLaVA / InternVL rows resolve; unset: the input's
    folder."""
    max_reject_ratio: float = Field(default=0.01, ge=0, le=1)
    """Fail (no manifest) above this share of rejected rows (0 to 1; default 0.01)."""
    rows_per_shard: PositiveInt = Field(default=1000, le=1_000_000)
    """Input rows per output part (1 to 1,000,000; default 1000)."""
    threads: PositiveInt = Field(default=8, le=256)
    """Image reads in flight per pod (object-store latency; 1 to 256; default 8)."""
    caption_from_alt_text: bool = False
    """WebDataset: also use the web text as the caption (train on it as is)."""


class ScoreSettings(ApiModel):
    """How ``task: score`` asks its judge (``sailvl data score``'s options)."""

    judge: Judge
    """The OpenAI-compatible endpoint (LMDeploy api_server, vLLM, ...), its model name,
    the Secret with its API key and the request timeout."""
    concurrency: PositiveInt = Field(default=16, le=1024)
    """Requests in flight per pod (1 to 1024; default 16)."""
    retries: int = Field(default=3, ge=0, le=20)
    """Extra attempts per request on transient failures (0 to 20; default 3)."""
    max_tokens: PositiveInt = Field(default=128, le=4096)
    """Reply length limit of the judge (1 to 4096; default 128)."""
    max_failed_ratio: float = Field(default=0.05, ge=0, le=1)
    """A shard with more than this share of endpoint failures (timeouts, errors) is not
    committed and the pod fails, so the index's retry asks again (0 to 1; default 0.05)."""


class Bounds(ApiModel):
    """Per-criterion score bounds on the 1-5 scale; unset criteria are not checked."""

    difficulty: Score | None = Field(default=None, ge=1, le=5)
    """Bound on task difficulty (1 to 5)."""
    complexity: Score | None = Field(default=None, ge=1, le=5)
    """Bound on data complexity (1 to 5)."""
    relevance: Score | None = Field(default=None, ge=1, le=5)
    """Bound on image-text relevance (1 to 5)."""

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class FilterSettings(ApiModel):
    """What ``task: filter`` keeps of a scored dataset (``sailvl data filter``)."""

    min: Bounds = Field(default_factory=Bounds)
    """Keep rows scoring at least this on each criterion set."""
    max: Bounds = Field(default_factory=Bounds)
    """Keep rows scoring at most this on each criterion set."""
    balance: Criterion | None = None
    """Cap the rows per level (1-5) of this criterion at perLevel, drawn with seed."""
    per_level: PositiveInt | None = None
    """Rows kept per level of balance."""
    seed: int = Field(default=0, ge=0)
    """Seed of the balance draw (default 0)."""
    keep_unscored: bool = False
    """Keep rows the judge could not score (default: drop them)."""

    @model_validator(mode="after")
    def _check(self) -> FilterSettings:
        lo, hi = self.min.as_dict(), self.max.as_dict()
        for crit in sorted(set(lo) & set(hi)):
            if lo[crit] > hi[crit]:
                raise ValueError(f"min.{crit} is above max.{crit}: nothing would be kept")
        if (self.balance is None) != (self.per_level is None):
            raise ValueError("set balance and perLevel together")
        if self.keep_unscored and self.balance is not None:
            raise ValueError("keepUnscored with balance: unscored rows have no level")
        return self


class DataJobSpec(ApiModel):
    # How the shared pod builder sees a data job: a CPU pod, no accelerator (not fields).
    accelerator: ClassVar[str] = "cpu"
    accelerator_type: ClassVar[str | None] = None
    devices_per_pod: ClassVar[int] = 0

    task: Task
    """import, score or filter (see the import / score / filter blocks)."""
    input: Uri
    """import: the input file or folder; score: a dataset; filter: a scored dataset."""
    output: Uri
    """The output dataset (manifest.json written last, when every shard is committed)."""
    import_: ImportSettings | None = Field(default=None, alias="import")
    """Settings of task import (defaults when unset)."""
    score: ScoreSettings | None = None
    """Settings of task score (required for it: the judge)."""
    filter: FilterSettings | None = None
    """Settings of task filter (required for it: the thresholds or the balance)."""
    parallelism: PositiveInt = Field(default=1, le=10000)
    """Pods (Job indexes); pod k takes the work items i with i % parallelism == k. Filter
    runs one pod."""
    backoff_limit_per_index: int = Field(default=2, ge=0, le=20)
    """Pod retries per Job index before the index counts as failed (0 to 20; default 2);
    a retried pod skips what its index already committed."""
    storage_secret: StorageSecretRef | None = None
    """Secret with the object-store credentials; its keys become the pods' AWS_* variables.
    Unset: the pods use their own identity (e.g. IRSA) or none."""
    resources: Resources = Field(default_factory=Resources)
    """Container resources (cpu, memory); data jobs request no accelerator."""
    template: PodOverlay = Field(default_factory=PodOverlay)
    """Additions to every pod of this resource: placement, volumes, env, labels."""

    @model_validator(mode="after")
    def _check(self) -> DataJobSpec:
        if self.input.rstrip("/") == self.output.rstrip("/"):
            raise ValueError("output must differ from input")
        blocks = {"import": self.import_, "score": self.score, "filter": self.filter}
        other = [k for k, v in blocks.items() if v is not None and k != self.task]
        if other:
            raise ValueError(f"task {self.task} does not read {', '.join(other)}: remove it")
        if self.task == "score" and self.score is None:
            raise ValueError("task score needs score.judge (the endpoint to ask)")
        if self.task == "filter":
            f = self.filter
            if f is None or not (f.min.as_dict() or f.max.as_dict() or f.balance):
                raise ValueError("task filter needs filter.min, filter.max or filter.balance")
            if self.parallelism != 1:
                raise ValueError("task filter runs one pod (its balance draw is global): "
                                 "set parallelism 1")  # fmt: skip
        return self


class DataJobStatus(CommonStatus):
    shards_total: int | None = None
    """Job indexes (parallelism)."""
    shards_done: int | None = None
    """Job indexes that succeeded (from the Job's status)."""
    shards_failed: int | None = None
    """Job indexes that failed after their retries."""
