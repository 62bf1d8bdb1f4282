"""The eval job's configuration: one dataclass per component, built from the job config.

``EvalConfig`` is what ``sailvl eval --config FILE`` runs; :func:`from_spec` turns an
``EvalSuite`` spec (with its named suite expanded and data URIs defaulted to
``<dataRoot>/<name>.tsv``) into it, so the operator's ConfigMap and the local executor
produce the same run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sailvl.api.benchmarks import max_new_tokens_for

from .judge import JudgeConfig
from .scorers import SCORERS

if TYPE_CHECKING:
    from sailvl.api.evalsuite import EvalSuiteSpec


@dataclass(kw_only=True)
class BenchmarkConfig:
    """One benchmark of a run."""

    name: str
    """Benchmark name (a known one, e.g. ``docvqa``, selects the category and prompts)."""
    data: str
    """URI of the VLMEvalKit-format TSV (``file://``, ``s3://``, ``hdfs://`` or a path)."""
    scorer: str
    """Scorer name, one of ``sailvl.eval.scorers.SCORERS``."""
    subset: int | None = None
    """Evaluate a random N-row subset of the usable rows, drawn with ``subset_seed``
    (None: all rows)."""
    subset_seed: int = 0
    """Seed of the subset draw: the same rows on every run and in every shard."""
    max_new_tokens: int | None = None
    """Answer budget in tokens; None: the run's, else the benchmark's default."""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name: must be a non-empty name without '/', got {self.name!r}")
        if not self.data:
            raise ValueError(f"data: benchmark {self.name!r} needs a TSV URI")
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer: {self.scorer!r} is not one of {sorted(SCORERS)}")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset: must be >= 1, got {self.subset}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")


@dataclass(kw_only=True)
class EvalConfig:
    """An evaluation run: one checkpoint over a list of benchmarks."""

    model: str
    """Checkpoint URI (Hugging Face format) the generator is built from."""
    output: str
    """Output URI: predictions/, scores/ and results.json go under it."""
    benchmarks: list[BenchmarkConfig]
    """Benchmarks in run order (a named suite already expanded)."""
    model_preset: str = "tiny"
    """Model preset the checkpoint was built with (tiny, 2b, 8b)."""
    suite: str | None = None
    """Name of the suite the benchmarks came from, for the report."""
    judge: JudgeConfig | None = None
    """Optional OpenAI-compatible judge (MCQ / yes-no fallback, MMVet, MathVista, captions)."""
    batch_size: int = 8
    """Rows per generation call."""
    max_new_tokens: int | None = None
    """Answer budget for every benchmark without its own; None: each benchmark's default."""
    shard_index: int = 0
    """This pod's shard (Indexed Job completion index)."""
    shard_count: int = 1
    """Number of shards (pods) the rows are split over, round-robin."""
    tokens: int | None = None
    """Training tokens behind the checkpoint (x axis of the scaling report)."""
    job: tuple[str, str] = ("", "")
    """(namespace, name) of the EvalSuite, for metrics and status."""
    flush_every: int = 1
    """Write a predictions part after this many batches (resume granularity)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Free-form labels copied into results.json (e.g. the curriculum step)."""

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("model: must not be empty")
        if not self.output:
            raise ValueError("output: must not be empty")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.shard_count < 1:
            raise ValueError(f"shard_count: must be >= 1, got {self.shard_count}")
        if not 0 <= self.shard_index < self.shard_count:
            raise ValueError(
                f"shard_index: must be in [0, {self.shard_count}), got {self.shard_index}"
            )
        if self.flush_every < 1:
            raise ValueError(f"flush_every: must be >= 1, got {self.flush_every}")
        if self.tokens is not None and self.tokens < 0:
            raise ValueError(f"tokens: must be >= 0, got {self.tokens}")
        names = [b.name for b in self.benchmarks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"benchmarks: names must be unique, repeated: {dup}")

    def budget(self, bench: BenchmarkConfig) -> int:
        """Max new tokens for ``bench``: its own setting, else the run's, else the known
        benchmark's default (``sailvl.api.benchmarks``: VLMEvalKit's budget for its kind)."""
        return bench.max_new_tokens or self.max_new_tokens or max_new_tokens_for(bench.name)


def from_spec(
    spec: EvalSuiteSpec,
    *,
    name: str = "",
    namespace: str = "",
    env: dict[str, str] | None = None,
) -> EvalConfig:
    """The run an EvalSuite spec asks for; shard from ``JOB_COMPLETION_INDEX``."""
    env = dict(os.environ) if env is None else env
    benches = []
    for b in spec.all_benchmarks():
        data = b.data or f"{str(spec.data_root).rstrip('/')}/{b.name}.tsv"
        benches.append(
            BenchmarkConfig(
                name=b.name,
                data=str(data),
                scorer=b.resolved_scorer(),
                subset=b.subset,
                subset_seed=b.subset_seed,
                max_new_tokens=b.max_new_tokens,
            )
        )
    judge = None
    if spec.judge is not None:
        judge = JudgeConfig(
            endpoint=str(spec.judge.endpoint),
            model=spec.judge.model,
            timeout_s=float(spec.judge.timeout_seconds),
        )
    return EvalConfig(
        model=str(spec.model),
        output=str(spec.output),
        benchmarks=benches,
        model_preset=spec.model_preset,
        suite=spec.suite,
        judge=judge,
        batch_size=spec.generation.batch_size,
        max_new_tokens=spec.generation.max_new_tokens,
        shard_index=int(env.get("JOB_COMPLETION_INDEX", "0")),
        shard_count=spec.parallelism,
        tokens=spec.tokens,
        job=(namespace, name),
    )
