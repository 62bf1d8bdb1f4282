"""The arithmetic a training stage must satisfy before its first step: one pure function
that both ``sailvl validate`` / the operator (through :mod:`sailvl.api.validation`) and
the trainer's launcher (``sailvl.train.preflight``) call, so a spec the trainer would
refuse at start-up is refused at admission time with the same words.

Global batch and world size. One optimizer step consumes exactly ``globalBatch``
SAMPLES (paper Table 3 counts samples). Each of the ``nodes x devicesPerNode`` workers
takes ``globalBatch / world`` of them from its own shard of the stream, so the batch
must divide over the workers: equal shares keep every rank in lock-step (ZeRO's
collectives) and make the sample -> (step, rank) assignment a pure function of the
stream, which is what lets a resume land on the same samples. Where it does not divide,
the message names the nearest global batches that do, and the node counts that would.

Budget rounding. ``steps`` is used as is. A ``samples`` budget that is not a multiple of
the global batch is rounded UP to whole steps: the stage runs
``ceil(samples / globalBatch)`` steps, so it trains on at least the budget and on less
than one global batch more (the paper's 21M SFT samples at batch 512: 41,016 steps,
21,000,192 samples, +0.001 %). Up rather than down because the budget names the data the
recipe means to show the model; rounding down would leave up to a batch of it unseen,
and rounding to nearest would make that depend on the remainder. A budget smaller than
one step is refused (it is almost always a unit mistake, e.g. samples meant as steps).
``tokens`` is open-ended: the run stops after the first step whose cumulative tokens
reach it, and the LR schedule uses a step count estimated from the mean tokens per
sample of the first samples of the stream (known only at run time; here only the
bound "at least one token per sample" is checked).

Tiles vs packing: a packed row must hold the largest image a sample can carry, in
tokens (``maxTiles`` tiles, plus the thumbnail tile when the grid has more than one
tile, times the model's tokens per tile) and in tiles (``packing.maxImages``); else
every such sample is cut, losing image tokens silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .train import TrainStageSpec

# (field path relative to the stage spec, message)
Problem = tuple[str, str]


class PlanError(ValueError):
    """The budget or batch cannot be scheduled (a configuration error)."""


@dataclass(frozen=True, kw_only=True)
class PlanInput:
    """The numbers the plan depends on, from a resolved TrainStage spec or TrainConfig."""

    global_batch: int  # samples per optimizer step, all workers
    world_size: int  # workers: nodes x devicesPerNode
    budget_kind: str  # "tokens", "samples" or "steps"
    budget: int  # in its unit
    max_tiles: int  # largest tile grid of one image
    use_thumbnail: bool  # a multi-tile grid gets one more (whole-image) tile
    tokens_per_tile: int  # the model preset's visual tokens per tile
    packing: bool  # packed rows (else padded micro-batches)
    max_tokens: int  # tokens per packed row
    max_images: int  # image tiles per packed row
    micro_batch: int  # samples per padded micro-batch (packing off)
    nodes: int | None = None  # for suggestions only (the trainer knows the world only)
    devices_per_node: int | None = None


def _divisors_near(n: int, target: int, upper: int) -> list[int]:
    """The divisors of ``n`` nearest to ``target`` from below and above (within 1..upper)."""
    below = [d for d in range(min(target, upper), 0, -1) if n % d == 0][:1]
    above = [d for d in range(target + 1, upper + 1) if n % d == 0][:1]
    return below + above


def batch_message(
    global_batch: int, world: int, nodes: int | None = None, per_node: int | None = None
) -> str:
    """Why ``global_batch`` does not divide over ``world`` workers, and what would."""
    low = (global_batch // world) * world
    valid = [v for v in (low, low + world) if v > 0]
    shape = (
        f"nodes {nodes} x devicesPerNode {per_node}"
        if nodes and per_node
        else "NNODES x NPROC_PER_NODE"
    )
    msg = (
        f"globalBatch {global_batch} does not divide over {world} workers ({shape}): every "
        f"worker must take the same number of samples per step; nearest valid globalBatch "
        f"for this world size: {' or '.join(map(str, valid))}"
    )
    if nodes and per_node and global_batch % per_node == 0:
        fits = _divisors_near(global_batch // per_node, nodes, 4096)
        if fits:
            msg += f"; or nodes {' or '.join(map(str, fits))} with devicesPerNode {per_node}"
    return msg


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """Samples each rank takes per optimizer step; PlanError unless divisible."""
    if world_size < 1:
        raise PlanError(f"world size must be >= 1, got {world_size}")
    if global_batch % world_size:
        raise PlanError(batch_message(global_batch, world_size))
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
        if self.kind == "samples":  # rounded up to whole steps: the last step ends at 1.0
            return min(1.0, step / self.total_steps)
        used = {"steps": step, "tokens": tokens}[self.kind]
        return min(1.0, used / self.value)


def sample_steps(samples: int, global_batch: int) -> int:
    """Steps of a ``samples`` budget: rounded UP to whole steps (module docstring)."""
    return math.ceil(samples / global_batch)


def plan_budget(
    kind: str, value: int, global_batch: int, mean_tokens_per_sample: float | None = None
) -> BudgetPlan:
    """The step count of a budget; PlanError if smaller than one step."""
    if value < 1:
        raise PlanError(f"budget.{kind}: must be >= 1, got {value}")
    if kind == "steps":
        return BudgetPlan(kind=kind, value=value, total_steps=value)
    if kind == "samples":
        if value < global_batch:
            raise PlanError(
                f"budget.samples {value} is smaller than one step (globalBatch {global_batch})"
            )
        return BudgetPlan(kind=kind, value=value, total_steps=sample_steps(value, global_batch))
    if kind == "tokens":
        if value < global_batch:
            raise PlanError(
                f"budget.tokens {value} is smaller than one step: a step of globalBatch "
                f"{global_batch} samples has at least {global_batch} tokens"
            )
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


def budget_problem(kind: str, value: int, global_batch: int) -> str | None:
    """What :func:`plan_budget` would refuse before the run knows its tokens per sample."""
    try:
        plan_budget(kind, value, global_batch, 1.0 if kind == "tokens" else None)
    except PlanError as err:
        return str(err).removeprefix(f"budget.{kind}: ").removeprefix(f"budget.{kind} ")
    return None


def image_tiles(max_tiles: int, use_thumbnail: bool) -> int:
    """Tiles of the largest image: the grid, plus the thumbnail of a multi-tile grid."""
    return max_tiles + (1 if use_thumbnail and max_tiles > 1 else 0)


def check_plan(p: PlanInput) -> list[Problem]:
    """Every reason the trainer would refuse this plan at start-up, as (field, message)."""
    out: list[Problem] = []
    if p.world_size < 1:
        return [("devicesPerNode", f"world size must be >= 1, got {p.world_size}")]
    if p.global_batch % p.world_size:
        msg = batch_message(p.global_batch, p.world_size, p.nodes, p.devices_per_node)
        out.append(("globalBatch", msg))
    budget = budget_problem(p.budget_kind, p.budget, p.global_batch)
    if budget:
        out.append((f"budget.{p.budget_kind}", budget))
    tiles = image_tiles(p.max_tiles, p.use_thumbnail)
    if p.packing and p.max_tokens < tiles * p.tokens_per_tile:
        out.append(
            (
                "packing.maxTokens",
                f"{p.max_tokens} cannot hold one image of {p.max_tiles} tiles "
                f"({tiles * p.tokens_per_tile} visual tokens: {tiles} tiles x "
                f"{p.tokens_per_tile}); raise it or lower maxTiles",
            )
        )
    if p.packing and p.max_images < tiles:
        out.append(
            (
                "packing.maxImages",
                f"{p.max_images} cannot hold one image of {p.max_tiles} tiles ({tiles} tiles "
                "with the thumbnail); raise it or lower maxTiles",
            )
        )
    share = p.global_batch // p.world_size
    if not p.packing and share and p.micro_batch > share:
        out.append(
            (
                "microBatch",
                f"{p.micro_batch} is larger than the {share} samples each worker takes per "
                f"step (globalBatch {p.global_batch} / {p.world_size} workers)",
            )
        )
    return out


def spec_plan(spec: TrainStageSpec) -> PlanInput:
    """The plan of a TrainStage spec at its own world size (``nodes x devicesPerNode``)."""
    from .presets import MODEL_LIMITS

    r = spec.resolved()
    assert r.global_batch is not None and r.max_tiles is not None  # resolved() fills them
    budget = r.budget
    kind = next(k for k in ("tokens", "samples", "steps") if getattr(budget, k) is not None)
    return PlanInput(
        global_batch=r.global_batch,
        world_size=r.nodes * r.devices_per_node,
        budget_kind=kind,
        budget=int(getattr(budget, kind)),
        max_tiles=r.max_tiles,
        use_thumbnail=r.use_thumbnail,
        tokens_per_tile=MODEL_LIMITS[r.model.preset].tokens_per_tile,
        packing=r.packing.enabled,
        max_tokens=r.packing.max_tokens,
        max_images=r.packing.max_images,
        micro_batch=r.micro_batch,
        nodes=r.nodes,
        devices_per_node=r.devices_per_node,
    )
