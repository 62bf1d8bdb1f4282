"""examples/experiments/: one realistic Experiment per strategy for SAIL-VL-2B on a GPU or
Ascend cluster at the paper's scale (2M-sample subsets, 2M annealing samples), each
passing `sailvl validate` and the trainer's plan checks for every trial's stages (the
plan check itself runs for every file under examples/ in test_api_plan_examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import parse_resource
from sailvl.api.experiment import STRATEGIES, ExperimentSpec
from sailvl.api.plan import check_plan, spec_plan
from sailvl.api.train import TrainStageSpec
from sailvl.cli import main as cli
from sailvl.experiment.trials import child_spec, trial_steps, trials

ROOT = Path(__file__).resolve().parents[2] / "examples" / "experiments"
FILES = sorted(ROOT.glob("*.yaml"))
TWO_M = 2_000_000


def load(path: Path) -> tuple[dict[str, Any], ExperimentSpec]:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    kind, _, spec = parse_resource(doc)
    assert kind == "Experiment" and isinstance(spec, ExperimentSpec)
    return doc, spec


def stages(spec: ExperimentSpec) -> list[TrainStageSpec]:
    out = []
    for t in trials(spec):
        for st in trial_steps(spec, t):
            if st.kind == "TrainStage":
                built = child_spec(spec, t, st, {})
                assert isinstance(built, TrainStageSpec)
                out.append(built)
    return out


def test_one_example_per_strategy() -> None:
    kinds = sorted(load(p)[1].strategy.kind for p in FILES)
    assert kinds == sorted(STRATEGIES)


def test_validate_accepts_every_example(capsys: Any) -> None:
    assert cli(["validate", *map(str, FILES)]) == 0
    out = capsys.readouterr()
    assert out.out.count(" ok") == len(FILES) and "warning" not in out.err


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_example_is_the_2b_model_at_paper_scale(path: Path) -> None:
    _, spec = load(path)
    assert spec.model.preset == "2b"
    assert spec.defaults.accelerator in ("nvidia", "ascend")
    built = stages(spec)
    assert built and all(check_plan(spec_plan(s)) == [] for s in built)
    for s in built:  # every trial on the cluster: 8 devices per node, bf16
        assert s.devices_per_node == 8 and s.nodes >= 4
        assert s.resolved().global_batch % (s.nodes * s.devices_per_node) == 0
    st = spec.strategy
    if st.quick_quality is not None:
        assert max(st.quick_quality.samples) == TWO_M  # the paper's 2M subsets
        assert {s.budget.samples for s in built} == set(st.quick_quality.samples)
    if st.checkpoint_scaling is not None:
        assert st.checkpoint_scaling.anneal.budget is not None
        assert st.checkpoint_scaling.anneal.budget.samples == TWO_M  # 2M annealing samples
        assert {s.budget.samples for s in built} == {TWO_M}
    if st.composition is not None or st.incremental is not None or st.correlation is not None:
        assert {s.budget.samples for s in built} == {TWO_M}
    if st.compare is not None:
        totals = {
            p.name: sum(x.budget.samples or 0 for x in p.stages if x.budget)
            for p in st.compare.plans
        }
        assert len(set(totals.values())) == 1, totals  # the same total budget
