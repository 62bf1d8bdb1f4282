"""Progress of a stage: Prometheus metrics (catalogue names) and the TrainStage status.

Rank 0 reports stage-wide values: loss, tokens and samples are already summed over ranks
by the loop, so nothing here communicates. Status fields are camelCase and merge-patched
(`sailvl.runtime.report`); the reporter rate-limits them, checkpoints and the end are
sent at once (`final=True`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sailvl.runtime.metrics import Metrics, family

_SHARED: dict[int, Metrics] = {}


def _metrics(registry: Any) -> Metrics:
    """One Metrics per registry and process: several stages in one process
    (`sailvl.train.sequence`) share the series instead of registering them twice."""
    key = id(registry)
    if key not in _SHARED:
        _SHARED[key] = Metrics(family("sailvl_train_"), registry=registry)
    return _SHARED[key]


@dataclass(kw_only=True)
class StepRecord:
    """What one optimizer step did, group-wide."""

    step: int  # steps done after this one
    loss: float  # weighted mean loss over all ranks
    lr: float  # learning rate used
    grad_norm: float | None  # global gradient norm, when DeepSpeed exposes it
    tokens: int  # real tokens this step, all ranks
    samples: int  # samples this step, all ranks
    seconds: float  # wall time of the step
    flops: float  # model FLOPs of the step (sailvl.train.flops)


class Progress:
    """Metrics and status writer for rank 0 (other ranks get a silent instance)."""

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        reporter: Any,
        enabled: bool,
        total_steps: int,
        devices: int,
        peak_flops: float | None,
        registry: Any = None,
    ) -> None:
        self.enabled = enabled
        self.reporter = reporter
        self.total_steps = total_steps
        self.devices = devices
        self.peak = peak_flops
        self.labels = {"namespace": namespace, "name": name}
        self.metrics = _metrics(registry) if enabled else None
        self.tokens = 0
        self.samples = 0
        self.step = 0
        self.last_mfu = 0.0
        self.last_tps = 0.0
        if self.metrics:
            self._m("sailvl_train_last_step_timestamp_seconds").set(time.time())

    def _m(self, name: str) -> Any:
        assert self.metrics is not None
        return self.metrics.labels(name, **self.labels)

    def resumed(self, step: int, tokens: int, samples: int, restarts: int) -> None:
        self.step, self.tokens, self.samples = step, tokens, samples
        if self.metrics:
            self._m("sailvl_train_step").set(step)
            self._m("sailvl_train_consumed_tokens").set(tokens)
            self._m("sailvl_train_restarts").set(restarts)

    def record(self, rec: StepRecord, progress: float) -> None:
        from sailvl.train.flops import mfu

        self.step = rec.step
        self.tokens += rec.tokens
        self.samples += rec.samples
        self.last_tps = rec.tokens / rec.seconds if rec.seconds > 0 else 0.0
        self.last_mfu = mfu(rec.flops, rec.seconds, self.devices, self.peak)
        if not self.enabled or self.metrics is None:
            return
        m = self._m
        m("sailvl_train_step").set(rec.step)
        m("sailvl_train_loss").set(rec.loss)
        m("sailvl_train_learning_rate").set(rec.lr)
        if rec.grad_norm is not None:
            m("sailvl_train_grad_norm").set(rec.grad_norm)
        m("sailvl_train_tokens_total").inc(rec.tokens)
        m("sailvl_train_samples_total").inc(rec.samples)
        m("sailvl_train_consumed_tokens").set(self.tokens)
        m("sailvl_train_tokens_per_second").set(self.last_tps)
        m("sailvl_train_mfu_ratio").set(self.last_mfu)
        m("sailvl_train_progress_ratio").set(progress)
        m("sailvl_train_step_duration_seconds").observe(rec.seconds)
        m("sailvl_train_last_step_timestamp_seconds").set(time.time())
        self.reporter.update(
            {
                "step": rec.step,
                "totalSteps": self.total_steps,
                "tokens": self.tokens,
                "samples": self.samples,
                "loss": round(rec.loss, 6),
                "tokensPerSecond": round(self.last_tps, 2),
            }
        )

    def checkpoint(self, uri: str, step: int, seconds: float) -> None:
        if not self.enabled or self.metrics is None:
            return
        self._m("sailvl_train_checkpoint_step").set(step)
        self._m("sailvl_train_checkpoint_duration_seconds").observe(seconds)
        self.reporter.update({"lastCheckpoint": uri, "step": step}, final=True)

    def finished(self, uri: str) -> None:
        if not self.enabled:
            return
        self.reporter.update(
            {
                "finalCheckpoint": uri,
                "step": self.step,
                "totalSteps": self.total_steps,
                "tokens": self.tokens,
                "samples": self.samples,
            },
            final=True,
        )
