"""Pure arithmetic of a stage: per-rank batch, budget plans, LR schedule, FLOPs, DS config,
retention."""

from __future__ import annotations

import math

import pytest

from sailvl.train.checkpoint import retention, unit_name, unit_step
from sailvl.train.engine import ds_config
from sailvl.train.flops import ArchCounts, mfu, multipliers, step_flops
from sailvl.train.schedule import (
    PlanError,
    lr_factor,
    per_rank_batch,
    plan_budget,
    warmup_steps,
)


@pytest.mark.parametrize(
    ("gb", "world", "want"), [(8, 2, 4), (1920, 64, 30), (512, 512, 1), (6, 1, 6)]
)
def test_per_rank_batch_divides(gb: int, world: int, want: int) -> None:
    assert per_rank_batch(gb, world) == want


@pytest.mark.parametrize(("gb", "world"), [(10, 4), (1920, 7), (3, 2)])
def test_per_rank_batch_rejects_indivisible(gb: int, world: int) -> None:
    with pytest.raises(PlanError, match="globalBatch"):
        per_rank_batch(gb, world)


def test_budget_steps_samples_tokens() -> None:
    assert plan_budget("steps", 7, 8).total_steps == 7
    assert plan_budget("samples", 64, 8).total_steps == 8
    assert plan_budget("samples", 20, 8).total_steps == 3  # rounded up (sailvl.api.plan)
    plan = plan_budget("tokens", 10_000, 8, mean_tokens_per_sample=250)
    assert plan.total_steps == 5  # 10000 / (8 * 250)
    assert not plan.done(4, 9_999) and plan.done(4, 10_000)
    assert plan_budget("samples", 64, 8).done(8, 0)
    assert plan_budget("steps", 7, 8).progress(7, 0, 0) == 1.0


@pytest.mark.parametrize(
    ("kind", "value", "mean", "match"),
    [
        ("samples", 4, None, "smaller than one step"),
        ("tokens", 100, 250.0, "smaller than one step"),
        ("tokens", 100, None, "estimate"),
        ("epochs", 1, None, "unknown"),
    ],
)
def test_budget_errors_name_the_problem(kind: str, value: int, mean, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        plan_budget(kind, value, 8, mean)


def test_lr_warmup_then_cosine_to_floor() -> None:
    total, warm = 100, warmup_steps(100, 0.03)
    assert warm == 3
    f = [lr_factor(i, total, warm, 0.1) for i in range(total + 5)]
    assert f[0] == pytest.approx(0.25) and f[2] == pytest.approx(0.75)
    assert f[3] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[3:], f[4:], strict=False))  # non-increasing
    assert f[total] == pytest.approx(0.1) and f[-1] == pytest.approx(0.1)
    mid = lr_factor(3 + 48 + 1, total, warm, 0.0)
    assert mid == pytest.approx(0.5 * (1 + math.cos(math.pi * 49 / 97)))


ARCH = ArchCounts(
    vision_params=300,
    vision_layers=2,
    vision_width=8,
    patches_per_tile=5,
    projector_params=50,
    tokens_per_tile=1,
    llm_params=1000,
    llm_layers=3,
    llm_width=16,
)


def test_multipliers_follow_module_order() -> None:
    assert multipliers(["projector"]) == {"vision": 1, "projector": 3, "llm": 2}
    assert multipliers(["vision", "projector"]) == {"vision": 3, "projector": 3, "llm": 2}
    assert multipliers(["llm"]) == {"vision": 1, "projector": 1, "llm": 3}


def test_step_flops_matches_hand_count() -> None:
    # projector-only: vision forward only, projector 6N, llm 4N (grads pass through).
    got = step_flops(ARCH, ["projector"], [3, 2], tiles=2)
    vision = 2 * 300 * 5 * 2 + 4 * 8 * 2 * 25 * 2
    projector = 3 * 2 * 50 * 1 * 2
    llm = 2 * 2 * 1000 * 5 + 3 * 2 * 16 * 3 * (3 * 4 + 2 * 3)
    assert got == vision + projector + llm
    all_ = step_flops(ARCH, ["vision", "projector", "llm"], [5], tiles=0)
    assert all_ == 3 * 2 * 1000 * 5 + 3 * 2 * 16 * 3 * 30


def test_mfu() -> None:
    assert mfu(1e12, 1.0, 2, 1e12) == pytest.approx(0.5)
    assert mfu(1e12, 1.0, 2, None) == 0.0


def test_ds_config_shapes() -> None:
    cfg = ds_config(
        zero_stage=3, precision="bf16", lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05,
        grad_clip=1.0, world_size=16, torch_adam=True,
    )  # fmt: skip
    assert cfg["managed_gradient_accumulation"] is False
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["overlap_comm"] is False
    assert cfg["bf16"]["enabled"] and not cfg["fp16"]["enabled"]
    assert cfg["optimizer"]["params"]["torch_adam"] is True
    assert cfg["train_batch_size"] == 16
    with pytest.raises(ValueError, match="precision"):
        ds_config(zero_stage=2, precision="auto", lr=1, betas=(0.9, 0.9), weight_decay=0,
                  grad_clip=1, world_size=1, torch_adam=False)  # fmt: skip


def test_retention_keeps_newest() -> None:
    units = [unit_name(s) for s in (30, 10, 20, 40)]
    assert [unit_step(u) for u in retention(units, 2)] == [10, 20]
    assert retention(units, 5) == []
    assert unit_name(7) == "step-00000007"
