"""Experiment trials and their state machine: expansion, parallelism, resumption,
the six strategies' decisions over simulated results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sailvl.api import parse_resource
from sailvl.api.experiment import ExperimentSpec
from sailvl.api.flow import ChildState
from sailvl.experiment.trials import (
    Results,
    child_name,
    child_spec,
    decide,
    trial_steps,
    trials,
)

from .experiment_builders import STRATEGIES, experiment

OK, RUN, FAIL = "Succeeded", "Running", "Failed"
Scores = Callable[[str, str], dict[str, float]]


def _spec(kind: str = "quickQuality", **over: Any) -> ExperimentSpec:
    spec = parse_resource(experiment(kind, **over))[2]
    assert isinstance(spec, ExperimentSpec)
    return spec


def simulate(
    spec: ExperimentSpec, scores: Scores, fail: set[str] = frozenset(), limit: int = 200
) -> tuple[Any, Results, list[tuple[str, str]], int]:
    """Run the state machine with children that finish one at a time (oldest first).
    Returns the last decision, the results, the creation order and the most trials
    that were ever active at once."""
    results: Results = {}
    created: list[tuple[str, str]] = []
    kinds: dict[tuple[str, str], str] = {}
    most = 0
    for _ in range(limit):
        d = decide(spec, results)
        for s in d.start:
            assert s.step.name not in results.get(s.trial.name, {}), "created twice"
            child_spec(spec, s.trial, s.step, results)  # buildable at creation
            results.setdefault(s.trial.name, {})[s.step.name] = ChildState(phase=RUN)
            created.append((s.trial.name, s.step.name))
            kinds[(s.trial.name, s.step.name)] = s.step.kind
        active = {
            t for t, steps in results.items()
            if any(st.phase == RUN for st in steps.values())
        }  # fmt: skip
        most = max(most, len(active))
        running = [(t, s) for t, s in created if results[t][s].phase == RUN]
        if not running:
            return d, results, created, most
        t, s = running[0]
        phase = FAIL if t in fail else OK
        sc = scores(t, s) if kinds[(t, s)] == "EvalSuite" and phase == OK else {}
        results[t][s] = ChildState(phase=phase, scores=sc, tokens=1000, message="boom")
    raise AssertionError("did not finish")


QUALITY = {"clean": 60.0, "c30": 45.0, "c70": 20.0}


def _qq_scores(t: str, s: str) -> dict[str, float]:
    cand, n = t.rsplit("-n", 1)
    # The larger subset scores a little higher, same order.
    v = QUALITY[cand] + (5 if n == "64" else 0)
    return {"synth-ocr": v, "synth-mcq": v, "synth-yesno": v}


def test_quick_quality_trials_names_and_variation() -> None:
    spec = _spec()
    names = [t.name for t in trials(spec)]
    assert names == ["clean-n32", "c30-n32", "c70-n32", "clean-n64", "c30-n64", "c70-n64"]
    t = trials(spec)[4]
    steps = trial_steps(spec, t)
    assert [(s.name, s.kind) for s in steps] == [
        ("train", "TrainStage"),
        ("train-eval", "EvalSuite"),
    ]
    train = child_spec(spec, t, steps[0], {})
    assert [d.uri for d in train.data] == ["file:///data/c30"]
    assert train.budget.samples == 64 and train.global_batch == 8
    assert train.output == "file:///runs/exp/c30-n64/train"
    assert train.model.init == "file:///models/tiny-init"
    ev = child_spec(spec, t, steps[1], {})
    assert ev.model == "file:///runs/exp/c30-n64/train/final"
    assert ev.output == "file:///runs/exp/c30-n64/train-eval"
    assert child_name("exp", t.name, "train") == "exp-c30-n64-train"


def test_compact_sample_names() -> None:
    spec = _spec(
        strategy={"quickQuality": {**STRATEGIES["quickQuality"], "samples": [2_000_000, 1500]}}
    )
    assert {t.name.rsplit("-", 1)[1] for t in trials(spec)} == {"n2m", "n1500"}


@pytest.mark.parametrize("parallelism", [1, 2, 4])
def test_parallelism_is_never_exceeded_and_nothing_is_created_twice(parallelism: int) -> None:
    spec = _spec(parallelism=parallelism)
    d, results, created, most = simulate(spec, _qq_scores)
    assert most == parallelism
    assert len(created) == len(set(created)) == 12
    assert d.phase == OK and d.done == 6


def test_decide_is_level_based_a_restart_creates_nothing_new() -> None:
    """The same results give the same decision: a restarted operator creates nothing
    that exists, and what it creates next is what the first one would have."""
    spec = _spec()
    results: Results = {"clean-n32": {"train": ChildState(phase=RUN)}}
    first = decide(spec, results)
    again = decide(spec, results)
    assert [(s.trial.name, s.step.name) for s in first.start] == [("c30-n32", "train")]
    assert [(s.trial.name, s.step.name) for s in again.start] == [("c30-n32", "train")]
    results["clean-n32"]["train"] = ChildState(phase=OK, tokens=10)
    d = decide(spec, results)
    assert [(s.trial.name, s.step.name) for s in d.start] == [
        ("clean-n32", "train-eval"),
        ("c30-n32", "train"),
    ]


def test_quick_quality_ranking_and_agreement() -> None:
    d, *_ = simulate(_spec(), _qq_scores)
    assert d.phase == OK
    assert d.result["ranking"] == ["clean", "c30", "c70"]
    assert d.best == "clean"
    (agree,) = d.result["agreement"]
    assert agree["samples"] == [32, 64] and agree["kendallTau"] == 1.0
    assert agree["spearman"] == 1.0
    assert ("RankAgreement", "True") in [(c[0], c[1]) for c in d.conditions]
    row = next(r for r in d.rows if r["name"] == "c70-n64")
    assert row["phase"] == OK and row["overall"] == pytest.approx(25.0)
    assert row["variant"] == {"candidate": "c70", "samples": 64}


def test_quick_quality_rank_disagreement_is_a_warning_condition() -> None:
    def flipped(t: str, s: str) -> dict[str, float]:
        sc = _qq_scores(t, s)
        if t == "c70-n32":  # the small subset ranks c70 first
            return {k: 99.0 for k in sc}
        return sc

    d, *_ = simulate(_spec(), flipped)
    assert d.phase == OK  # a warning, not a failure
    (cond,) = [c for c in d.conditions if c[0] == "RankAgreement"]
    assert cond[1] == "False" and cond[2] == "RankDisagreement"
    assert "c70 > clean > c30" in cond[3] and "clean > c30 > c70" in cond[3]
    assert d.result["agreement"][0]["kendallTau"] < 1.0


def test_failed_trial_is_a_row_and_the_others_decide() -> None:
    d, *_ = simulate(_spec(), _qq_scores, fail={"c30-n64"})
    assert d.phase == OK
    row = next(r for r in d.rows if r["name"] == "c30-n64")
    assert row["phase"] == FAIL and "train failed: boom" in row["message"]
    assert d.result["ranking"] == ["clean", "c70"]


def test_composition_effects_and_proposed_mixture() -> None:
    effect = {"base": 50.0, "half-ocr": 40.0, "half-mcq": 49.5, "half-noisy": 53.0}
    d, *_ = simulate(_spec("composition"), lambda t, s: {"synth-ocr": effect[t]})
    r = d.result
    assert r["effects"] == {"ocr": -10.0, "mcq": -0.5, "noisy": 3.0}
    assert r["reduce"] == ["noisy"]  # tolerance 0: mcq's -0.5 hurts
    weights = {x["uri"].rsplit("/", 1)[1]: x["weight"] for x in r["data"]}
    assert weights == {"ocr": 1.0, "mcq": 2.0, "noisy": 0.5}
    assert d.best == "half-noisy"
    spec = _spec("composition")
    half = trials(spec)[2]
    train = child_spec(spec, half, trial_steps(spec, half)[0], {})
    assert [x.weight for x in train.data] == [1.0, 1.0, 1.0]  # mcq 2.0 halved


def test_composition_without_base_cannot_decide() -> None:
    d, *_ = simulate(_spec("composition"), lambda t, s: {"synth-ocr": 1.0}, fail={"base"})
    assert d.phase == FAIL and d.reason == "NoDecision" and "base" in d.message


def test_incremental_accepts_in_order_and_builds_on_accepted() -> None:
    score = {"base": 50.0, "add-clean": 55.0, "add-c70": 40.0, "add-dup": 54.5}
    spec = _spec("incremental")
    d, results, created, most = simulate(spec, lambda t, s: {"synth-ocr": score[t]})
    assert most == 1  # one after the other, whatever the parallelism
    assert [t for t, s in created if s == "train"] == ["base", "add-clean", "add-c70", "add-dup"]
    r = d.result
    assert r["accepted"] == ["clean", "dup"]  # dup: 54.5 >= 55 - tolerance 1
    assert r["rejected"] == ["c70"]
    assert [e["delta"] for e in r["steps"]] == [5.0, -15.0, -0.5]
    assert [x["uri"] for x in r["data"]] == [
        "file:///data/base", "file:///data/clean", "file:///data/base"
    ]  # fmt: skip
    # add-dup was trained on base + clean (accepted) + dup, not on the rejected c70.
    t = trials(spec)[3]
    train = child_spec(spec, t, trial_steps(spec, t)[0], results)
    assert [x.uri for x in train.data] == [
        "file:///data/base", "file:///data/clean", "file:///data/base"
    ]  # fmt: skip


def test_incremental_failed_candidate_is_rejected_and_failed_base_skips_all() -> None:
    score = {"base": 50.0, "add-clean": 55.0, "add-c70": 40.0, "add-dup": 56.0}
    d, *_ = simulate(_spec("incremental"), lambda t, s: {"synth-ocr": score[t]}, fail={"add-clean"})
    assert d.result["rejected"][0] == "clean" and d.result["steps"][0]["why"] == "trial failed"
    assert d.result["accepted"] == ["dup"]
    d, *_ = simulate(_spec("incremental"), lambda t, s: {"synth-ocr": 1.0}, fail={"base"})
    assert d.phase == FAIL
    assert [r["phase"] for r in d.rows] == [FAIL, "Skipped", "Skipped", "Skipped"]


def test_checkpoint_scaling_fit() -> None:
    import math

    spec = _spec("checkpointScaling")
    tokens = {"anneal-a": 1000, "anneal-b": 10000, "anneal-c": 100000}
    d, *_ = simulate(
        spec, lambda t, s: {"synth-ocr": 10 + 5 * math.log10(tokens[t]), "synth-mcq": 30.0}
    )
    fit = d.result["fits"]["synth-ocr"]
    assert fit["b"] == pytest.approx(5.0) and fit["r2"] == pytest.approx(1.0)
    assert d.result["points"]["synth-ocr"][0] == [1000.0, 25.0]
    assert "overall" in d.result["fits"] and d.best == "anneal-c"
    t = trials(spec)[1]
    train = child_spec(spec, t, trial_steps(spec, t)[0], {})
    assert train.model.init == "file:///ck/b" and train.data[0].uri == "file:///data/anneal"


def test_correlation_pearson() -> None:
    pre = {"p1": 10.0, "p2": 20.0, "p3": 30.0}
    sft = {"p1": 41.0, "p2": 52.0, "p3": 59.0}

    def scores(t: str, s: str) -> dict[str, float]:
        return {"synth-ocr": pre[t] if s == "pretrain-eval" else sft[t]}

    spec = _spec("correlation")
    t = trials(spec)[0]
    assert [s.name for s in trial_steps(spec, t)] == ["pretrain-eval", "train", "train-eval"]
    pe = child_spec(spec, t, trial_steps(spec, t)[0], {})
    assert pe.model == "file:///ck/p1" and pe.output == "file:///runs/exp/p1/pretrain-eval"
    d, *_ = simulate(spec, scores)
    # sxy = 180, sxx = 200, syy = 164.67 (by hand)
    assert d.result["pearson"] == pytest.approx(180 / (200 * 164.6667) ** 0.5, abs=1e-4)
    assert d.result["r2"] == pytest.approx(d.result["pearson"] ** 2, abs=1e-3)
    assert [r["pretrain"] for r in d.rows] == [10.0, 20.0, 30.0]


def test_compare_curves_in_samples() -> None:
    final = {"three": 50.0, "allin": 45.0}
    d, *_ = simulate(_spec("compare"), lambda t, s: {"synth-ocr": final[t]})
    assert d.result["curves"]["three"] == [[32.0, 50.0], [64.0, 50.0], [96.0, 50.0]]
    assert d.result["curves"]["allin"] == [[96.0, 45.0]]
    assert d.best == "three"


def test_checkpoint_scaling_trains_its_source_and_anneals_each_export() -> None:
    obj = experiment("checkpointScaling")
    cs = obj["spec"]["strategy"]["checkpointScaling"]
    del cs["checkpoints"]
    cs["interval"] = 4000
    obj["spec"]["template"]["stage"].update(
        data=[{"uri": "file:///data/pt"}], budget={"tokens": 12000}
    )
    spec = parse_resource(obj)[2]
    names = [t.name for t in trials(spec)]
    assert names == ["source", "anneal-4k", "anneal-8k", "anneal-12k"]
    source = trials(spec)[0]
    assert [s.name for s in trial_steps(spec, source)] == ["train"]  # no eval of its own
    train = child_spec(spec, source, trial_steps(spec, source)[0], {})
    assert train.checkpoint.export_every_tokens == 4000 and train.budget.tokens == 12000
    anneal = trials(spec)[2]
    assert anneal.needs == ("source",)
    step = trial_steps(spec, anneal)[0]
    a = child_spec(spec, anneal, step, {})
    assert a.model.init == "file:///runs/exp/source/train/export/tokens-8000"
    assert a.data[0].uri == "file:///data/anneal" and a.budget.samples == 32
    # The anneals wait for the source and are skipped when it fails.
    d = decide(spec, {})
    assert [s.trial.name for s in d.start] == ["source"]
    d = decide(spec, {"source": {"train": ChildState(phase=FAIL, message="oom")}})
    assert [r["phase"] for r in d.rows] == [FAIL, "Skipped", "Skipped", "Skipped"]
    assert d.phase == FAIL and "fewer than two checkpoints" in d.message


def test_a_deleted_earlier_child_is_not_created_again() -> None:
    """train-eval exists, so train succeeded: its child having been deleted since must
    not start a second training run."""
    spec = _spec(parallelism=1)
    d = decide(spec, {"clean-n32": {"train-eval": ChildState(phase=RUN)}})
    assert d.start == []
    assert d.rows[0]["phase"] == RUN and d.rows[0]["step"] == "train-eval"
    d = decide(spec, {"clean-n32": {"train-eval": ChildState(phase=OK, scores={"synth-ocr": 5.0})}})
    assert d.rows[0]["phase"] == OK
    assert [(s.trial.name, s.step.name) for s in d.start] == [("c30-n32", "train")]


def test_compare_eval_every_evaluates_exports_inside_stages() -> None:
    obj = experiment("compare")
    obj["spec"]["strategy"]["compare"]["evalEvery"] = 32  # 4 steps of globalBatch 8
    spec = parse_resource(obj)[2]
    three, allin = trials(spec)
    # three: 32 samples per stage = 4 steps: no export before its last step.
    assert [s.name for s in trial_steps(spec, three)] == [
        "know", "know-eval", "instr", "instr-eval", "pref", "pref-eval"
    ]  # fmt: skip
    # allin: 12 steps, exports every 4 steps; steps 4 and 8 are curve points.
    steps = trial_steps(spec, allin)
    assert [s.name for s in steps] == ["all", "all-at4", "all-at8", "all-eval"]
    train = child_spec(spec, allin, steps[0], {})
    assert train.checkpoint.export_every_steps == 4
    ev = child_spec(spec, allin, steps[1], {})
    assert ev.model == "file:///runs/exp/allin/all/export/step-4"
    assert ev.output == "file:///runs/exp/allin/all-at4"
    final = {"all-at4": 20.0, "all-at8": 30.0, "all-eval": 45.0}
    d, _, created, _ = simulate(spec, lambda t, s: {"synth-ocr": final.get(s, 50.0)})
    assert [s for t, s in created if t == "allin"] == ["all", "all-at4", "all-at8", "all-eval"]
    assert d.result["curves"]["allin"] == [[32.0, 20.0], [64.0, 30.0], [96.0, 45.0]]
    assert d.result["final"] == {"three": 50.0, "allin": 45.0}
