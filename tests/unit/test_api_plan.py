"""The stage plan (sailvl.api.plan): run at validation time and by the trainer, the same
function; budget rounding; messages that name the field and the values that would work."""

from __future__ import annotations

import math

import pytest

from sailvl.api import SpecError, parse_resource
from sailvl.api.plan import (
    PlanInput,
    batch_message,
    check_plan,
    plan_budget,
    spec_plan,
)

from .api_builders import mutate, train_stage

TS = train_stage()


def _problems(obj: dict) -> str:
    with pytest.raises(SpecError) as err:
        parse_resource(obj)
    return str(err.value)


@pytest.mark.parametrize(
    ("samples", "batch", "steps"),
    [(20, 8, 3), (64, 8, 8), (21_000_000, 512, 41_016), (12_000_000, 512, 23_438),
     (3_500_000, 512, 6_836), (9, 8, 2)],
)  # fmt: skip
def test_samples_budget_rounds_up_to_whole_steps(samples: int, batch: int, steps: int) -> None:
    plan = plan_budget("samples", samples, batch)
    assert plan.total_steps == steps == math.ceil(samples / batch)
    # At least the budget, less than one batch more.
    assert samples <= plan.total_steps * batch < samples + batch
    assert not plan.done(steps - 1, 0) and plan.done(steps, 0)
    assert plan.progress(steps, 0, steps * batch) == 1.0
    assert plan.progress(steps - 1, 0, (steps - 1) * batch) < 1.0


def test_trainer_uses_the_api_plan() -> None:
    """One implementation: the trainer's schedule re-exports the API's functions."""
    from sailvl.train import schedule

    assert schedule.plan_budget is plan_budget
    from sailvl.api import plan

    assert schedule.per_rank_batch is plan.per_rank_batch


def test_batch_message_names_nearest_batches_and_node_counts() -> None:
    msg = batch_message(1920, 256, 32, 8)
    assert "globalBatch 1920" in msg and "256 workers" in msg
    assert "1792 or 2048" in msg  # the multiples of 256 around 1920
    assert "nodes 30 or 40 with devicesPerNode 8" in msg  # 1920 / 8 = 240 = 30 x 8 = 40 x 6
    assert "nearest valid globalBatch for this world size: 8" in batch_message(5, 8)


def test_indivisible_global_batch_refused_at_validation() -> None:
    obj = mutate(mutate(TS, "spec.globalBatch", 10), "spec.devicesPerNode", 4)
    msg = _problems(obj)
    assert "spec.globalBatch: globalBatch 10 does not divide over 4 workers" in msg
    assert "8 or 12" in msg


def test_plan_problems_name_each_field() -> None:
    base = PlanInput(
        global_batch=16, world_size=2, budget_kind="samples", budget=8, max_tiles=6,
        use_thumbnail=True, tokens_per_tile=16, packing=True, max_tokens=100, max_images=4,
        micro_batch=1,
    )  # fmt: skip
    fields = [f for f, _ in check_plan(base)]
    # samples 8 < one step of 16; 7 tiles x 16 = 112 tokens > 100; 7 tiles > 4 images
    assert fields == ["budget.samples", "packing.maxTokens", "packing.maxImages"]
    from dataclasses import replace

    unpacked = replace(base, packing=False, micro_batch=9, budget=32)
    assert [f for f, _ in check_plan(unpacked)] == ["microBatch"]
    assert check_plan(replace(base, budget_kind="tokens", budget=15))[0][0] == "budget.tokens"


def test_validation_and_trainer_see_the_same_plan() -> None:
    """spec_plan (validation) and preflight.plan_input (trainer) agree on every number."""
    from sailvl.api.validation import parse_spec
    from sailvl.train.config import from_spec
    from sailvl.train.preflight import plan_input

    spec = parse_spec("TrainStage", {**TS["spec"], "budget": {"samples": 20}})
    cfg = from_spec(spec, name="ts", namespace="ns", world_size=2)
    ours = spec_plan(spec)  # type: ignore[arg-type]
    from dataclasses import replace

    assert plan_input(cfg) == replace(ours, nodes=None, devices_per_node=None)


def test_trainer_preflight_refuses_what_validation_refuses(tmp_path) -> None:
    """A config the launcher checks (world size from the pod env) fails with the same
    field and message as validation."""
    from sailvl.train.config import DataSourceConfig, TrainConfig
    from sailvl.train.preflight import ConfigError, check

    cfg = TrainConfig(
        output=f"file://{tmp_path}/out", data=(DataSourceConfig(uri=f"file://{tmp_path}/d"),),
        global_batch=8, world_size=2, budget_kind="samples", budget=4, accelerator="cpu",
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"budget.samples: 4 is smaller than one step"):
        check(cfg)
    msg = _problems(mutate(TS, "spec.budget", {"samples": 4}))
    assert "spec.budget.samples: 4 is smaller than one step (globalBatch 8)" in msg


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("spec.devicesPerNode", 3, "spec.globalBatch: globalBatch 8 does not divide over 3"),
        ("spec.budget", {"samples": 7}, "spec.budget.samples"),
        ("spec.budget", {"tokens": 7}, "spec.budget.tokens"),
        ("spec.packing", {"maxImages": 4}, "spec.packing.maxImages"),
        ("spec.packing", {"enabled": False}, None),
    ],
)
def test_stage_plan_fields(path: str, value: object, needle: str | None) -> None:
    obj = mutate(mutate(TS, "spec.maxTiles", 6), path, value)
    if needle is None:
        parse_resource(obj)
        return
    assert needle in _problems(obj)


def test_micro_batch_larger_than_a_workers_share() -> None:
    obj = mutate(mutate(TS, "spec.packing", {"enabled": False}), "spec.microBatch", 8)
    assert "spec.microBatch: 8 is larger than the 4 samples each worker takes" in _problems(obj)


@pytest.mark.parametrize("world", [1, 2, 3, 8, 12, 240, 256])
def test_plan_agrees_with_the_trainer_over_a_grid(world: int) -> None:
    """check_plan flags globalBatch exactly when the trainer's per_rank_batch raises, and
    the budget exactly when plan_budget raises; suggested batches always divide."""
    from dataclasses import replace

    from sailvl.api.plan import PlanError, per_rank_batch

    base = PlanInput(
        global_batch=1, world_size=world, budget_kind="samples", budget=1, max_tiles=1,
        use_thumbnail=False, tokens_per_tile=1, packing=True, max_tokens=64, max_images=1,
        micro_batch=1,
    )  # fmt: skip
    for gb in range(1, 3 * world + 2):
        for samples in (1, gb - 1, gb, gb + 1, 7 * gb + 3):
            if samples < 1:
                continue
            fields = {f for f, _ in check_plan(replace(base, global_batch=gb, budget=samples))}
            try:
                per_rank_batch(gb, world)
                divides = True
            except PlanError:
                divides = False
            assert ("globalBatch" in fields) != divides
            try:
                plan_budget("samples", samples, gb)
                ok = True
            except PlanError:
                ok = False
            assert ("budget.samples" in fields) != ok
        if gb % world:
            msg = batch_message(gb, world)
            valid = msg.split("world size: ")[1].split(" or ")
            assert all(int(v) % world == 0 and abs(int(v) - gb) < world for v in valid)
