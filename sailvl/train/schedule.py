"""Pure arithmetic of a stage: the LR schedule, the budget in steps, the per-rank batch.

Global batch under packing. One optimizer step consumes exactly `global_batch`
SAMPLES (paper Table 3 counts samples), whatever their length. Each rank takes
`global_batch / world` samples per step from its own shard of the stream and packs them
into as many micro-batches as they need; so the number of micro-batches varies from
step to step and rank to rank, while the samples per step do not. Requiring
divisibility keeps every rank's share equal and the sample -> (step, rank) assignment a
pure function of the stream, which is what makes a resume land on the same samples.

Budget: `steps` is used as is; `samples` must be a multiple of the global batch (else
the stage could not end exactly at it) and is divided; `tokens` is open-ended: the run
stops after the first step whose cumulative tokens reach the budget, and the LR schedule
uses an estimate of the step count from the mean tokens per sample measured on the
first samples of the stream.

LR: linear warmup from 0 over `ceil(warmup_ratio * total)` steps to the peak, then
cosine decay to `min_lr_ratio * peak` at `total` (InternVL / HF
`get_cosine_schedule_with_warmup` shape, with a floor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class PlanError(ValueError):
    """The budget or batch cannot be scheduled (a configuration error)."""


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """Samples each rank takes per optimizer step; PlanError unless divisible."""
    if world_size < 1:
        raise PlanError(f"world size must be >= 1, got {world_size}")
    if global_batch % world_size:
        raise PlanError(
            f"globalBatch {global_batch} is not divisible by the {world_size} workers "
            f"(nodes x devicesPerNode): each worker must take the same number of samples"
        )
    return global_batch // world_size


@dataclass(frozen=True, kw_only=True)
class BudgetPlan:
    """How long the stage runs."""

    kind: str  # "steps", "samples" or "tokens"
    value: int  # the budget in its own unit
    total_steps: int  # steps for the LR schedule (exact unless kind == "tokens")

    def done(self, step: int, tokens: int) -> bool:
        """True once `step` steps with `tokens` cumulative tokens meet the budget."""
        if self.kind == "tokens":
            return tokens >= self.value
        return step >= self.total_steps

    def progress(self, step: int, tokens: int, samples: int) -> float:
        """Fraction of the budget done, in [0, 1]."""
        used = {"steps": step, "samples": samples, "tokens": tokens}[self.kind]
        return min(1.0, used / self.value)


def plan_budget(
    kind: str, value: int, global_batch: int, mean_tokens_per_sample: float | None = None
) -> BudgetPlan:
    """The step count of a budget; PlanError if smaller than one step or not exact."""
    if value < 1:
        raise PlanError(f"budget.{kind}: must be >= 1, got {value}")
    if kind == "steps":
        return BudgetPlan(kind=kind, value=value, total_steps=value)
    if kind == "samples":
        if value < global_batch:
            raise PlanError(
                f"budget.samples {value} is smaller than one step (globalBatch {global_batch})"
            )
        if value % global_batch:
            raise PlanError(
                f"budget.samples {value} is not a multiple of globalBatch {global_batch}: "
                "the stage could not end exactly at its budget"
            )
        return BudgetPlan(kind=kind, value=value, total_steps=value // global_batch)
    if kind == "tokens":
        if not mean_tokens_per_sample or mean_tokens_per_sample <= 0:
            raise PlanError("budget.tokens needs a positive mean tokens per sample estimate")
        per_step = global_batch * mean_tokens_per_sample
        if value < per_step:
            raise PlanError(
                f"budget.tokens {value} is smaller than one step (about {per_step:.0f} "
                f"tokens: globalBatch {global_batch} x {mean_tokens_per_sample:.0f} "
                "tokens per sample)"
            )
        return BudgetPlan(kind=kind, value=value, total_steps=max(1, round(value / per_step)))
    raise PlanError(f"budget: unknown kind {kind!r} (tokens, samples or steps)")


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length in steps (at least 0, at most total - 1)."""
    return max(0, min(total_steps - 1, math.ceil(warmup_ratio * total_steps)))


def lr_factor(step: int, total_steps: int, warmup: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak LR for the optimizer step with 0-based index `step`.

    Warmup: (step + 1) / (warmup + 1), so the first update already moves; then cosine
    from 1 at the end of warmup to `min_lr_ratio` at `total_steps`, held after it.
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    decay = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / decay)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine
