"""Pure arithmetic of a stage: the LR schedule; the budget in steps and the per-rank
batch come from :mod:`sailvl.api.plan` (re-exported here).

Global batch under packing. One optimizer step consumes exactly `global_batch`
SAMPLES (paper Table 3 counts samples), whatever their length. Each rank takes
`global_batch / world` samples per step from its own shard of the stream and packs them
into as many micro-batches as they need; so the number of micro-batches varies from
step to step and rank to rank, while the samples per step do not.

Budget: see :mod:`sailvl.api.plan` (a `samples` budget is rounded UP to whole steps).

LR: linear warmup from 0 over `ceil(warmup_ratio * total)` steps to the peak, then
cosine decay to `min_lr_ratio * peak` at `total` (InternVL / HF
`get_cosine_schedule_with_warmup` shape, with a floor).
"""

from __future__ import annotations

import math

# The plan arithmetic is pure and shared with validation (sailvl validate, the operator):
# one implementation, so the trainer refuses exactly what admission refuses.
from sailvl.api.plan import BudgetPlan, PlanError, per_rank_batch, plan_budget

__all__ = [
    "BudgetPlan",
    "PlanError",
    "lr_factor",
    "per_rank_batch",
    "plan_budget",
    "warmup_steps",
]


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
