"""Proof that the Experiment strategies measure data quality, not just run: each test
runs an Experiment with ``sailvl run`` (the product: trials as ``sailvl train|eval``
subprocesses, DeepSpeed on CPU, the tiny model) over candidate collections whose
quality is known by construction (``sailvl.data.groundtruth``), and checks the
decision against that knowledge:

- quickQuality ranks clean > noisy-30 > noisy-70 (Spearman 1.0) at both subset sizes,
  each step by at least ``MARGIN`` points of gt-shapes; and the mutation check: with
  the clean collection's answers shuffled across rows the same ranking test fails;
- incremental, from a base without the colour question, accepts the clean collection
  and rejects the 70 % corrupted one added after it, each at least
  ``INCREMENTAL_MARGIN`` points from the acceptance bar;
- composition finds that halving the corrupted group does not hurt;
- checkpointScaling (the warm start's exports at ``MARKS`` tokens, each annealed and
  evaluated) fits a rising log-linear curve and reports R^2.

Every test starts from one shared artefact, the module fixture's warm start (its final
checkpoint for the trials, its intermediate exports for checkpointScaling), so the
module trains one long run, not two. quickQuality's and incremental's sizes and
margins were checked over seeds 0, 1, 2; composition and checkpointScaling on seed 0,
the one CI runs (README "Experiments": figures and times). ``SAILVL_GT_SEED`` offsets
the data seeds and the training seed, for recalibration:
``SAILVL_GT_SEED=3 pytest tests/e2e/test_experiment_groundtruth.py`` (with
``SAILVL_GT_ROOT=file:///some/folder`` the data and warm start are kept there and
reused by later runs of the same seed).

Time (seed 0, 2 CPU cores shared with other jobs, load 6-13, 2026-11-30; incremental
then judged on gt-shapes, the same trials' cost): 22 min 47 s wall for the module (fixture 164 s, quickQuality 393 s, incremental 448 s, composition
205 s, checkpointScaling 156 s) and 11.6 CPU-minutes (user + sys, every process). On
an idle 2-core machine that is about 7 minutes: half the CPU time where two trials run
side by side, plus the single-process warm start and the three incremental trials,
which run one after the other (an estimate from the CPU time, not an idle measurement).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.experiment.local import load_result

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SEED = int(os.environ.get("SAILVL_GT_SEED", "0"))
MARGIN = 3.0
"""Smallest score gap (gt-shapes ANLS points, 0-100) between neighbours of the expected
ranking. Calibrated over seeds 0, 1, 2 at both sizes: the smallest observed gap was 7.5
(seed 2, noisy-30 over noisy-70 at 128 samples); seed 0, the one CI runs, has >= 19.8."""
TOLERANCE = 2.0
"""incremental / composition tolerance (points): a change "does not hurt" within it."""
INCREMENTAL_MARGIN = 10.0
"""Smallest distance (points) of an incremental score from the acceptance bar. Measured
through sailvl run for seeds 0, 1, 2: clean +91.3, +51.4, +82.8 and noisy-70 -77.1,
-28.3, -62.5 from the best before (the closest, 26.3 below the bar, is seed 1's)."""
NOISY_WEIGHT = 4.0
"""noisy-70's sampling weight in the incremental test (the others have 1)."""
SIZES = [128, 256]
EVAL = {"benchmarks": [{"name": "gt-shapes", "scorer": "anls"}]}
COLOURS = "gt-colours"
"""The colour questions of gt-shapes alone (sailvl.data.groundtruth.colour_rows)."""


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The collections, benchmark and warm start, written once for the module (or
    reused from ``SAILVL_GT_ROOT`` when a previous run finished writing them there).

    The warm start is the one trained artefact every test shares: the quickQuality,
    incremental and composition trials start from its final checkpoint, and
    checkpointScaling anneals its intermediate exports (every ``INTERVAL`` tokens)
    instead of training a run of its own."""
    from sailvl.data.groundtruth import write_groundtruth
    from sailvl.local.assets import save_initial_model, train_warm_start
    from sailvl.storage import open_store

    root = os.environ.get("SAILVL_GT_ROOT") or f"file://{tmp_path_factory.mktemp('gt')}"
    store = open_store(root)
    if store.exists("_READY"):
        found = store.read_bytes("_READY").decode()
        if found != READY:
            pytest.fail(f"SAILVL_GT_ROOT {root} holds {found!r}, not {READY!r}: use a new folder")
        return root
    write_groundtruth(root, seed=SEED)
    save_initial_model(f"{root}/models/tiny-init")
    # The warm start's training subprocess inherits this process's environment; pin it
    # as the trials are pinned (run() below), so its weights do not depend on how many
    # threads the CI runner would give torch.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")
        env.setenv("DS_ACCELERATOR", "cpu")
        train_warm_start(root, export_every_tokens=INTERVAL)
    store.write_bytes("_READY", READY.encode())
    return root


def experiment(gt: str, name: str, strategy: dict[str, Any], **stage: Any) -> dict[str, Any]:
    """An Experiment like examples/demo/experiment.yaml over the shared ground truth."""
    demo = yaml.safe_load(
        (Path(__file__).parents[2] / "examples" / "demo" / "experiment.yaml").read_text()
    )
    spec = demo["spec"]
    spec["model"]["init"] = f"{gt}/models/warm-start/final"
    spec["template"]["stage"].update(stage)
    spec["template"]["stage"]["overrides"] = {"seed": 1234 + SEED}
    spec["strategy"] = strategy
    spec["evalDataRoot"] = f"{gt}/bench"
    return {"apiVersion": demo["apiVersion"], "kind": "Experiment", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def data(gt: str, *names: str, weight: float = 1.0) -> list[dict[str, Any]]:
    return [{"uri": f"{gt}/data/{n}", "weight": weight} for n in names]


def run(doc: dict[str, Any], tmp: Path) -> Any:
    """``sailvl run`` the Experiment; its status (``<run>/experiment.json``)."""
    path = tmp / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    storage = f"file://{tmp}/run"
    proc = subprocess.run(
        [sys.executable, "-m", "sailvl.cli", "run", str(path), "--storage", storage],
        env={**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=1700,
    )  # fmt: skip
    result = load_result(tmp / "run")
    assert proc.returncode == 0 and result is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert result.phase == "Succeeded", result.message
    return result


def scores_at(result: Any, samples: int) -> dict[str, float]:
    rows = result.decision["rankings"][str(samples)]
    return {r["candidate"]: float(r["score"]) for r in rows}


def assert_ranked(scores: dict[str, float], order: list[str], margin: float) -> None:
    """``order`` is the ranking, each neighbour ahead by at least ``margin``."""
    from sailvl.experiment.stats import spearman

    expected = [float(len(order) - i) for i in range(len(order))]
    rho = spearman(expected, [scores[k] for k in order])
    assert rho == 1.0, f"Spearman {rho:.2f}: {scores}"
    gaps = [scores[a] - scores[b] for a, b in zip(order, order[1:], strict=False)]
    assert min(gaps) >= margin, f"gaps {gaps} below the margin {margin}: {scores}"


def test_quick_quality_ranks_by_known_quality(gt: str, tmp_path: Path) -> None:
    names = ["clean", "noisy-30", "noisy-70", "shuffled"]
    strategy = {
        "quickQuality": {
            "samples": SIZES,
            "candidates": [{"name": n, "data": data(gt, n)} for n in names],
        }
    }
    result = run(experiment(gt, "gt-quality", strategy), tmp_path)
    for n in SIZES:
        scores = scores_at(result, n)
        print(f"quickQuality {n} samples: {scores}")
        assert_ranked(scores, ["clean", "noisy-30", "noisy-70"], MARGIN)
        # Mutation: the clean collection with its answers shuffled across rows. The same
        # ranking test must fail, or it was not measuring the answers' quality.
        mutated = {**scores, "clean": scores["shuffled"]}
        with pytest.raises(AssertionError):
            assert_ranked(mutated, ["clean", "noisy-30", "noisy-70"], MARGIN)
    assert result.decision["ranking"][0] == "clean"
    agreement = result.decision["agreement"][0]
    assert agreement["samples"] == SIZES and agreement["spearman"] is not None


def test_incremental_accepts_clean_and_rejects_noisy(gt: str, tmp_path: Path) -> None:
    """The base (``base-shapes``) asks only the shape question: trained on it alone the
    model loses most of its colour answers. The clean candidate brings the colour skill
    back; noisy-70, tried next on top of base + clean, teaches the wrong colour for 70 %
    of its answers. Trials are judged on ``gt-colours``, the benchmark of the skill the
    candidates bring.

    noisy-70 comes at weight ``NOISY_WEIGHT`` (as a collection that many times the size
    would be sampled by size): a consistent wrong label under half of a question's
    labels is never the most likely answer, so at weight 1 next to base + clean (35 %
    of the colour labels wrong) it may change no answer at all (seed 2: 47/48 colour
    answers right, rejected by 2.1 points, a hair). At weight 4, 56 % of its trial's
    colour labels are wrong.

    The first version (two-question ``base``, noisy-70 at weight 1, ``gt-shapes``) was
    a coin toss: noisy-70 changed no colour answer, and the candidates differed only by
    how well 32 steps happened to learn the shape question, which swings by up to half
    the shape rows between runs on equally clean data (clean accepted at 87.5 vs 81.25
    here, rejected at 73.96 < 82.29 - 2 in a clean clone)."""
    strategy = {
        "incremental": {
            "base": data(gt, "base-shapes"),
            "candidates": [
                {"name": "clean", "data": data(gt, "clean")},
                {"name": "noisy-70", "data": data(gt, "noisy-70", weight=NOISY_WEIGHT)},
            ],
            "tolerance": TOLERANCE,
        }
    }
    doc = experiment(gt, "gt-incremental", strategy, budget={"samples": 256})
    doc["spec"]["template"]["eval"] = {"benchmarks": [{"name": COLOURS, "scorer": "anls"}]}
    doc["spec"]["selection"] = {"metric": COLOURS}
    result = run(doc, tmp_path)
    steps = {s["candidate"]: s for s in result.decision["steps"]}
    print(f"incremental: base {result.decision['base']}, steps {result.decision['steps']}")
    assert result.decision["accepted"] == ["clean"]
    assert result.decision["rejected"] == ["noisy-70"]
    uris = [d["uri"] for d in result.decision["data"]]
    assert uris == [f"{gt}/data/base-shapes", f"{gt}/data/clean"]
    # Not by a hair: each decision clears the acceptance bar (best - tolerance) by at
    # least INCREMENTAL_MARGIN points.
    assert steps["clean"]["delta"] >= -TOLERANCE + INCREMENTAL_MARGIN, steps
    assert steps["noisy-70"]["delta"] <= -TOLERANCE - INCREMENTAL_MARGIN, steps


def test_composition_halving_the_corrupted_group_does_not_hurt(gt: str, tmp_path: Path) -> None:
    strategy = {
        "composition": {
            "groups": [
                {"name": "clean", "data": data(gt, "base")},
                {"name": "corrupted", "data": data(gt, "noisy-70", weight=2.0)},
            ],
            "tolerance": TOLERANCE,
        }
    }
    result = run(experiment(gt, "gt-composition", strategy, budget={"samples": 256}), tmp_path)
    effects = result.decision["effects"]
    print(f"composition: base {result.decision['base']}, effects {effects}")
    assert effects["corrupted"] >= -TOLERANCE
    assert result.decision["reduce"] == ["corrupted"]
    weights = {d["uri"].rsplit("/", 1)[-1]: d["weight"] for d in result.decision["data"]}
    assert weights == {"base": 1.0, "noisy-70": 1.0}
    # The control: the same measurement ranks halving the corrupted group well above
    # halving the clean one (measured: +12.5 against -2.1 points).
    assert effects["corrupted"] - effects["clean"] >= 5.0, effects


def test_checkpoint_scaling_fits_a_monotone_curve(gt: str, tmp_path: Path) -> None:
    """The warm start's exports (a training run from the untrained model, as a
    pretraining stage would start, keeping a model every INTERVAL tokens): the ones at
    MARKS tokens each get the same short anneal and eval. (The ``interval`` form, where
    the Experiment trains that run itself as trial ``source``, builds the same anneal
    trials: tests/unit/test_experiment_trials.py.)"""
    import json

    from sailvl.storage import open_store

    exports = open_store(f"{gt}/models/warm-start/export")
    checkpoints = []
    for mark in MARKS:
        rec = json.loads(exports.read_bytes(f"tokens-{mark}.json"))
        checkpoints.append(
            {"name": f"t{mark // 1000}k", "uri": rec["uri"], "tokens": rec["tokens"]}
        )
    strategy = {
        "checkpointScaling": {
            "checkpoints": checkpoints,
            "anneal": {
                "data": data(gt, "anneal"),
                "budget": {"samples": 64},
                "optimizer": {"lr": 0.001, "warmupRatio": 0.0},
            },
        }
    }
    result = run(experiment(gt, "gt-scaling", strategy), tmp_path)
    fit = result.decision["fits"]["gt-shapes"]
    points = result.decision["points"]["gt-shapes"]
    print(f"checkpointScaling: points {points}, fit {fit}")
    assert fit["n"] == len(MARKS) and len(points) == len(MARKS)
    assert fit["b"] > 0, f"the fitted curve does not rise: {fit}"
    assert 0.0 <= fit["r2"] <= 1.0
    assert result.decision["summary"].endswith(f"over {len(MARKS)} checkpoints")


INTERVAL = 25_000
"""The warm start exports a model every INTERVAL tokens (about 14 steps of 8 samples;
it sees about 280k tokens in its 160 steps)."""
MARKS = [25_000, 50_000, 100_000, 200_000]
"""The exports checkpointScaling anneals: doubling token counts, even on the log axis."""
READY = f"seed {SEED}, warm start exports every {INTERVAL} tokens, base-shapes, {COLOURS}\n"
"""The _READY marker's text: a SAILVL_GT_ROOT written by an older module is refused."""
