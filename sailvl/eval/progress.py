"""Progress of an eval run: a callback hook and the Prometheus mirror.

The runner calls :meth:`EvalProgress.samples` after each batch and
:meth:`EvalProgress.scored` after each benchmark. Both build an immutable snapshot
(a plain dict in the EvalSuite status' field names: ``scores``, ``categories``,
``overall``, ``benchmarksDone``, ``benchmarksTotal``, ``errors``) and pass it to the
optional callback, which the eval job wires to ``sailvl.runtime.report.StatusReporter``.

Metrics (catalogue family ``sailvl_eval_``): ``sailvl_eval_samples_total{benchmark}``,
``sailvl_eval_score{benchmark}``, ``sailvl_eval_category_score{category}``,
``sailvl_eval_overall_score`` and ``sailvl_eval_checkpoint_tokens``, labelled with the
EvalSuite's namespace and name. Without prometheus_client only the export is skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

ProgressCallback = Callable[[dict[str, Any]], None]

_CACHE: dict[int, Any] = {}
_LOCK = threading.Lock()


def _metrics(registry: Any) -> Any:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return None
    from sailvl.runtime.metrics import Metrics, family

    with _LOCK:  # prometheus_client refuses a second registration of a name
        if id(registry) not in _CACHE:
            _CACHE[id(registry)] = (registry, Metrics(family("sailvl_eval_"), registry=registry))
        return _CACHE[id(registry)][1]


class EvalProgress:
    def __init__(
        self,
        total: int,
        *,
        job: tuple[str, str] = ("", ""),
        callback: ProgressCallback | None = None,
        registry: Any = None,
        tokens: int | None = None,
    ) -> None:
        self.total = total
        self.done = 0
        self.scores: dict[str, float] = {}
        self.errors: dict[str, int] = {}
        self.categories: dict[str, float] = {}
        self.overall: float | None = None
        self.callback = callback
        self._job = {"namespace": job[0], "name": job[1]}
        self._m = _metrics(registry)
        if self._m is not None and tokens is not None:
            self._m.labels("sailvl_eval_checkpoint_tokens", **self._job).set(tokens)

    def snapshot(self) -> dict[str, Any]:
        return {
            "scores": dict(self.scores),
            "categories": dict(self.categories),
            "overall": self.overall,
            "benchmarksDone": self.done,
            "benchmarksTotal": self.total,
            "errors": dict(self.errors),
        }

    def _emit(self, extra: dict[str, Any], final: bool = False) -> None:
        if self.callback is not None:
            self.callback({**self.snapshot(), **extra, "final": final})

    def samples(self, benchmark: str, n: int, answered: int, rows: int) -> None:
        if self._m is not None and n:
            self._m.labels("sailvl_eval_samples_total", benchmark=benchmark, **self._job).inc(n)
        self._emit({"benchmark": benchmark, "answered": answered, "rows": rows})

    def scored(self, benchmark: str, score: float | None, errors: int) -> None:
        self.done += 1
        if score is not None:
            self.scores[benchmark] = score
            if self._m is not None:
                self._m.labels("sailvl_eval_score", benchmark=benchmark, **self._job).set(score)
        if errors:
            self.errors[benchmark] = errors
        self._emit({"benchmark": benchmark})

    def finished(self, categories: dict[str, float], overall: float | None) -> None:
        self.categories, self.overall = dict(categories), overall
        if self._m is not None:
            for cat, value in categories.items():
                self._m.labels("sailvl_eval_category_score", category=cat, **self._job).set(value)
            if overall is not None:
                self._m.labels("sailvl_eval_overall_score", **self._job).set(overall)
        self._emit({}, final=True)
