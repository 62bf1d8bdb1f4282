"""Progress accounting and Prometheus metrics of the caption worker.

`Progress` is the one mutable record of a pod's work (samples, shards by state,
failures by reason, throughput). The worker updates it from its threads under a lock
and hands immutable snapshots (plain dicts) to the progress callback, so a callback that
writes status or logs never races the pipeline.

Metrics mirror the record through the project's metric catalogue
(`sailvl.runtime.metrics`, family `sailvl_caption_`): `sailvl_caption_samples_total`,
`sailvl_caption_shards_total{state}` (committed | skipped | failed | superseded: a
taken-over shard another pod committed first),
`sailvl_caption_failures_total{reason}`, the gauge `sailvl_caption_samples_per_second`
and the histogram `sailvl_caption_batch_duration_seconds`, all labelled with the
CaptionJob's namespace and name. Without prometheus_client the record still counts;
only the export is skipped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

_CACHE: dict[int, Any] = {}
_CACHE_LOCK = threading.Lock()


def _metrics(registry: Any) -> Any:
    """One `Metrics` per registry per process: prometheus_client refuses to register a
    name twice, so a second worker in the same process must reuse the first's."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return None
    from sailvl.runtime.metrics import Metrics, family

    with _CACHE_LOCK:
        key = id(registry)
        if key not in _CACHE:
            _CACHE[key] = (registry, Metrics(family("sailvl_caption_"), registry=registry))
        return _CACHE[key][1]


class Progress:
    """Thread-safe counters of one worker run (and their Prometheus mirror)."""

    def __init__(
        self,
        shards_total: int,
        *,
        job: tuple[str, str] = ("", ""),
        registry: Any = None,
        assignment: str = "static",
    ) -> None:
        self.assignment = assignment
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self.shards_total = shards_total
        self.shards: Counter[str] = Counter()  # committed | skipped | failed | superseded
        self.samples = 0  # rows that got a kept caption
        self.processed = 0  # rows generated (kept or rejected), for throughput
        self.failures: Counter[str] = Counter()
        self._job = {"namespace": job[0], "name": job[1]}
        self._m = _metrics(registry)

    def shard(self, state: str) -> None:
        with self._lock:
            self.shards[state] += 1
        if self._m:
            self._m.labels("sailvl_caption_shards_total", state=state, **self._job).inc()

    def batch(self, seconds: float) -> None:
        if self._m:
            self._m.labels("sailvl_caption_batch_duration_seconds", **self._job).observe(seconds)

    def add(self, *, captioned: int, processed: int, failures: Counter[str]) -> None:
        with self._lock:
            self.samples += captioned
            self.processed += processed
            self.failures.update(failures)
            rate = self.processed / max(time.monotonic() - self._t0, 1e-9)
        if self._m:
            self._m.labels("sailvl_caption_samples_total", **self._job).inc(captioned)
            for reason, n in failures.items():
                self._m.labels("sailvl_caption_failures_total", reason=reason, **self._job).inc(n)
            self._m.labels("sailvl_caption_samples_per_second", **self._job).set(rate)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = time.monotonic() - self._t0
            return {
                "shards_total": self.shards_total,
                "shards_done": self.shards["committed"] + self.shards["skipped"],
                "shards_skipped": self.shards["skipped"],
                "shards_failed": self.shards["failed"],
                "shards_superseded": self.shards["superseded"],
                "assignment": self.assignment,
                "samples": self.samples,
                "processed": self.processed,
                "failures": dict(self.failures),
                "elapsed_s": round(elapsed, 3),
                "samples_per_second": round(self.processed / elapsed, 3) if elapsed else 0.0,
            }
