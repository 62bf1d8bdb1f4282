"""The metric catalogue: every Prometheus metric sailvl exports, in one table.

Jobs (train, caption, eval) and the operator never define a metric themselves: they ask
a `Metrics` object for one by its catalogue name. That keeps the names, help texts and
label sets in one place, which the Helm chart's alert rules and Grafana dashboard are
checked against (tests/chart/test_monitoring_metrics.py): a rule that queries a name no
code exports would otherwise stay silent forever instead of firing.

prometheus_client is imported lazily, inside `Metrics` and `serve`, so importing this
module (and `sailvl`) stays cheap and works without the operator/train extras.

Labels. Job metrics carry `namespace` and `name` of the resource the job belongs to (the
TrainStage, CaptionJob or EvalSuite), not the pod's: the chart scrapes with
`honorLabels: true` so these win over the target labels Prometheus adds. Operator
metrics carry `kind` (the resource kind) and, for per-object gauges, `namespace`/`name`.

Conventions (checked by `MetricSpec.__post_init__`): `sailvl_` prefix, snake case,
counters end in `_total`, nothing else does, durations are `_seconds`, ratios `_ratio`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

JOB_METRICS_PORT = 9400
"""Port every job pod serves /metrics on (container port named `metrics`)."""
OPERATOR_METRICS_PORT = 9090
"""Port the operator serves /metrics on (container port named `metrics`)."""

Kind = Literal["counter", "gauge", "histogram"]
_NAME = re.compile(r"^sailvl_[a-z]([a-z0-9_]*[a-z0-9])?$")
_LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
_JOB = ("namespace", "name")
# Step times from sub-second (tiny model on CPU) to minutes (8B, large global batch).
_STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_SAVE_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """One metric of the catalogue."""

    name: str
    """Exposition name, e.g. `sailvl_train_tokens_total` (counters include `_total`)."""
    kind: Kind
    """Prometheus type: counter, gauge or histogram."""
    help: str
    """The HELP text: what is measured, and when it is updated."""
    labels: tuple[str, ...] = ()
    """Label names, in the order `Metrics.labels(...)` expects them."""
    buckets: tuple[float, ...] | None = None
    """Histogram bucket upper bounds (histograms only)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or "__" in self.name:
            raise ValueError(f"name: {self.name!r} is not a snake_case sailvl_ metric name")
        if self.kind not in ("counter", "gauge", "histogram"):
            raise ValueError(f"kind: {self.kind!r} must be counter, gauge or histogram")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"name: {self.name!r}: counters, and only counters, end in _total")
        if self.kind == "histogram" and not self.buckets:
            raise ValueError(f"buckets: histogram {self.name!r} needs buckets")
        if self.kind != "histogram" and self.buckets is not None:
            raise ValueError(f"buckets: only histograms take buckets ({self.name!r})")
        if not self.help.strip():
            raise ValueError(f"help: {self.name!r} needs a help text")
        bad = [x for x in self.labels if not _LABEL.match(x) or x.startswith("__")]
        if bad or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels: {self.name!r} has invalid or repeated labels {bad}")

    @property
    def base(self) -> str:
        """The name prometheus_client is given (it appends `_total` to counters)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    def series(self) -> tuple[str, ...]:
        """Every sample name this metric produces in the exposition format."""
        if self.kind == "counter":
            return (self.name, f"{self.base}_created")
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "count", "sum", "created"))
        return (self.name,)


def _c(name: str, help: str, labels: tuple[str, ...] = _JOB) -> MetricSpec:
    return MetricSpec(name=name, kind="counter", help=help, labels=labels)


def _g(name: str, help: str, labels: tuple[str, ...] = _JOB) -> MetricSpec:
    return MetricSpec(name=name, kind="gauge", help=help, labels=labels)


def _h(
    name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = _JOB
) -> MetricSpec:
    return MetricSpec(name=name, kind="histogram", help=help, labels=labels, buckets=buckets)


_SPECS: tuple[MetricSpec, ...] = (
    # --- training (sailvl train; rank 0 reports stage-wide values) ---
    _g("sailvl_train_step", "Optimizer step reached by the stage (resumes from the checkpoint)."),
    _g("sailvl_train_loss", "Training loss of the last optimizer step (mean over ranks)."),
    _g("sailvl_train_learning_rate", "Learning rate used by the last optimizer step."),
    _g("sailvl_train_grad_norm", "Global gradient norm of the last optimizer step."),
    _c(
        "sailvl_train_tokens_total",
        "Tokens (text and visual) trained on by this process group since it started; rate() gives tokens/s.",
    ),
    _c("sailvl_train_samples_total", "Samples trained on by this process group since it started."),
    _g(
        "sailvl_train_consumed_tokens",
        "Tokens the stage has consumed in all, restored from the checkpoint on resume.",
    ),
    _g(
        "sailvl_train_tokens_per_second",
        "Training throughput over the last logging interval, all ranks.",
    ),
    _g("sailvl_train_mfu_ratio", "Model FLOPs utilisation (0..1) over the last logging interval."),
    _g(
        "sailvl_train_progress_ratio",
        "Fraction (0..1) of the stage budget (tokens, samples or steps) done.",
    ),
    _g("sailvl_train_restarts", "Restart attempt of the pod group (0 on the first run)."),
    _g("sailvl_train_checkpoint_step", "Step of the newest committed checkpoint."),
    _g(
        "sailvl_train_last_step_timestamp_seconds",
        "Unix time the last optimizer step finished; set to the process start time before the first step.",
    ),
    _h("sailvl_train_step_duration_seconds", "Wall time of one optimizer step.", _STEP_BUCKETS),
    _h(
        "sailvl_train_checkpoint_duration_seconds",
        "Wall time to save and commit one checkpoint.",
        _SAVE_BUCKETS,
    ),
    # --- recaptioning (sailvl caption) ---
    _c("sailvl_caption_samples_total", "Samples captioned and committed."),
    _c(
        "sailvl_caption_shards_total",
        "Shards finished, by state: committed, skipped (already committed by an earlier run) or failed.",
        (*_JOB, "state"),
    ),
    _c(
        "sailvl_caption_failures_total",
        "Caption attempts that failed, by reason (engine, timeout, decode, storage, empty).",
        (*_JOB, "reason"),
    ),
    _c("sailvl_caption_generated_tokens_total", "Caption tokens generated by the engine."),
    _g(
        "sailvl_caption_samples_per_second",
        "Caption throughput of this worker over the last interval.",
    ),
    _h("sailvl_caption_batch_duration_seconds", "Wall time of one engine batch.", _STEP_BUCKETS),
    # --- data jobs (sailvl data job: a DataJob's pods) ---
    _c(
        "sailvl_data_samples_total",
        "Samples a data job finished, by task (import, score, filter) and status: ok, or why "
        "the sample was rejected, not scored or dropped (non_json, timeout, below_min:relevance, ...).",
        (*_JOB, "task", "status"),
    ),
    _c(
        "sailvl_data_shards_total",
        "Output shards (import: input files) a data job committed, by task.",
        (*_JOB, "task"),
    ),
    # --- storage (every job process; sailvl.storage.retry counts, the pod labels say whose) ---
    _c(
        "sailvl_storage_retries_total",
        "Storage operations retried after a transient failure, by operation (read, write, "
        "exists, list, delete, open) and reason (throttled, server_error, timeout, "
        "connection, truncated, other).",
        ("op", "reason"),
    ),
    # --- evaluation (sailvl eval) ---
    _c("sailvl_eval_samples_total", "Benchmark samples answered and scored.", (*_JOB, "benchmark")),
    _g(
        "sailvl_eval_score",
        "Score of the evaluated model on a benchmark (the benchmark's own scale).",
        (*_JOB, "benchmark"),
    ),
    _g(
        "sailvl_eval_category_score",
        "Average score of a benchmark category (General VQA, OCR VQA, ...).",
        (*_JOB, "category"),
    ),
    _g("sailvl_eval_overall_score", "Average score over all benchmarks of the suite."),
    _g(
        "sailvl_eval_checkpoint_tokens",
        "Training tokens behind the evaluated checkpoint (x axis of the scaling plot).",
    ),
    _c("sailvl_eval_generated_tokens_total", "Answer tokens generated by the evaluated model."),
    # --- operator (sailvl_operator) ---
    _g("sailvl_operator_info", "Always 1; labels carry the operator version.", ("version",)),
    _c(
        "sailvl_operator_reconciles_total",
        "Handler runs, by kind and result (success, retry, error, permanent_error).",
        ("kind", "result"),
    ),
    _c("sailvl_operator_errors_total", "Handler runs that raised, by kind.", ("kind",)),
    _g(
        "sailvl_operator_resources",
        "Resources the operator watches, by kind and phase.",
        ("kind", "phase"),
    ),
    _g(
        "sailvl_operator_resource_phase",
        "1 for the current phase of each resource, 0 for the others.",
        ("kind", "namespace", "name", "phase"),
    ),
    _g(
        "sailvl_operator_train_restarts",
        "status.restarts of each TrainStage (group restarts so far).",
        _JOB,
    ),
    _h(
        "sailvl_operator_step_duration_seconds",
        "Wall time of one handler run (one reconcile step).",
        _HANDLER_BUCKETS,
        ("kind", "handler"),
    ),
    _g(
        "sailvl_curriculum_step",
        "Index (0-based) of the step a Curriculum is running; equals the step count when done.",
        ("namespace", "curriculum"),
    ),
    _g(
        "sailvl_curriculum_steps",
        "Number of steps of a Curriculum (caption, stages, evals).",
        ("namespace", "curriculum"),
    ),
    _c(
        "sailvl_curriculum_gate_failures_total",
        "Eval gates of a Curriculum that failed (metric below threshold).",
        ("namespace", "curriculum", "step"),
    ),
    _g(
        "sailvl_experiment_trials",
        "Trials of an Experiment by phase (Pending until started, then their children's).",
        ("namespace", "experiment", "phase"),
    ),
    _g(
        "sailvl_experiment_best_score",
        "Selection-metric score of an Experiment's best finished trial so far.",
        ("namespace", "experiment"),
    ),
)

CATALOGUE: dict[str, MetricSpec] = {s.name: s for s in _SPECS}
"""Every exported metric, by exposition name."""
if len(CATALOGUE) != len(_SPECS):  # pragma: no cover - guards edits to _SPECS
    raise ValueError("_SPECS: a metric name appears twice")


def series_names() -> frozenset[str]:
    """All sample names the project can expose (counter `_total`/`_created`, histogram
    `_bucket`/`_sum`/`_count`/`_created`, gauges as is)."""
    return frozenset(n for spec in _SPECS for n in spec.series())


def family(prefix: str) -> tuple[MetricSpec, ...]:
    """The specs whose name starts with `prefix` (e.g. `sailvl_train_`)."""
    return tuple(s for s in _SPECS if s.name.startswith(prefix))


@dataclass(kw_only=True)
class Config:
    """Where a process serves its metrics."""

    enabled: bool = True
    """Serve /metrics at all (off for unit tests and `sailvl run` without monitoring)."""
    port: int = JOB_METRICS_PORT
    """TCP port; 0 picks a free one (tests)."""
    addr: str = "0.0.0.0"
    """Bind address; pods bind all interfaces so Prometheus can scrape them."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port (0..65535)")
        if not self.addr:
            raise ValueError("addr: must not be empty")


class Metrics:
    """Lazily created prometheus_client metrics for a chosen part of the catalogue.

    `Metrics(names=family("sailvl_train_"))` registers nothing until a metric is first
    used; `metrics["sailvl_train_loss"].labels(namespace="ns", name="s").set(1.2)` creates
    it in `registry` (the process-wide default unless given, which tests pass to stay
    isolated). Asking for a name outside the catalogue raises KeyError, so a typo fails
    at once instead of exporting an unknown series.
    """

    def __init__(self, specs: Iterable[MetricSpec] | None = None, registry: Any = None) -> None:
        self._specs = {s.name: s for s in (specs if specs is not None else _SPECS)}
        self._registry = registry
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()  # handler threads may first use a metric together

    @property
    def registry(self) -> Any:
        """The prometheus_client CollectorRegistry the metrics live in."""
        if self._registry is None:
            from prometheus_client import REGISTRY

            self._registry = REGISTRY
        return self._registry

    def __getitem__(self, name: str) -> Any:
        if name not in self._specs:
            raise KeyError(f"{name!r} is not in this Metrics' catalogue")
        with self._lock:
            if name not in self._made:
                self._made[name] = _build(self._specs[name], self.registry)
        return self._made[name]

    def labels(self, metric: str, /, **labels: str) -> Any:
        """The child of `metric` for `labels`; every label of its spec must be given."""
        if metric not in self._specs:
            raise KeyError(f"{metric!r} is not in this Metrics' catalogue")
        spec = self._specs[metric]
        missing, extra = set(spec.labels) - set(labels), set(labels) - set(spec.labels)
        if missing or extra:
            raise ValueError(
                f"labels: {metric} needs {spec.labels}; missing {missing}, extra {extra}"
            )
        return self[metric].labels(**labels)


def _build(spec: MetricSpec, registry: Any) -> Any:
    import prometheus_client as pc

    common: dict[str, Any] = {"labelnames": spec.labels, "registry": registry}
    if spec.kind == "counter":
        return pc.Counter(spec.base, spec.help, **common)
    if spec.kind == "gauge":
        return pc.Gauge(spec.name, spec.help, **common)
    return pc.Histogram(spec.name, spec.help, buckets=spec.buckets or (), **common)


@dataclass
class Server:
    """A running /metrics HTTP server (a daemon thread); `close()` stops it."""

    port: int
    """The port it listens on (the real one when 0 was asked for)."""
    _server: Any = field(repr=False)
    _thread: Any = field(repr=False)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(port: int = JOB_METRICS_PORT, *, addr: str = "0.0.0.0", registry: Any = None) -> Server:
    """Serve `registry` (default: the process-wide one) on http://addr:port/metrics.

    Call once per process, after `Config` said metrics are enabled; the server runs in a
    daemon thread and dies with the process.
    """
    Config(port=port, addr=addr)  # validates both
    import prometheus_client as pc

    server, thread = pc.start_http_server(port, addr=addr, registry=registry or pc.REGISTRY)
    return Server(port=server.server_port, _server=server, _thread=thread)
