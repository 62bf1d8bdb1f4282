"""Experiment specs: every bad field refused up front, naming the field (and the trial)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import SpecError, parse_resource
from sailvl.api.experiment import ExperimentSpec
from sailvl.cli import main as cli

from .experiment_builders import STRATEGIES, experiment

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        node: Any = spec
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
        if value is _DEL:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return edit


_DEL = object()


def _interval(budget: dict[str, int]) -> Edit:
    """checkpointScaling training its own source run, exporting every 1000 tokens."""

    def edit(spec: dict[str, Any]) -> None:
        spec["strategy"]["checkpointScaling"].pop("checkpoints")
        spec["strategy"]["checkpointScaling"]["interval"] = 1000
        spec["template"]["stage"].update(data=[{"uri": "file:///d"}], budget=budget)

    return edit


QQ = "strategy.quickQuality"

CASES: list[tuple[str, str, Edit, str]] = [
    ("two strategies", "quickQuality",
     _set("strategy.composition", STRATEGIES["composition"]),
     "spec.strategy: set exactly one strategy"),
    ("no strategy", "quickQuality", _set(QQ, _DEL), "spec.strategy: set exactly one strategy"),
    ("duplicate candidates", "quickQuality", _set(f"{QQ}.candidates.1.name", "clean"),
     "spec.strategy.quickQuality: candidate names must be unique: ['clean']"),
    ("one candidate", "quickQuality", _set(f"{QQ}.candidates", [STRATEGIES["quickQuality"]["candidates"][0]]),
     "spec.strategy.quickQuality.candidates: List should have at least 2 items"),
    ("unknown strategy field", "quickQuality", _set(f"{QQ}.subsets", [1]),
     "spec.strategy.quickQuality.subsets: unknown field"),
    ("template data replaced", "quickQuality", _set("template.stage.data", [{"uri": "file:///x"}]),
     "spec.template.stage.data: quickQuality chooses each trial's data itself"),
    ("template budget replaced", "quickQuality", _set("template.stage.budget", {"steps": 3}),
     "spec.template.stage.budget: quickQuality trains each trial on"),
    ("subset below one step", "quickQuality", _set(f"{QQ}.samples", [4, 64]),
     "spec.strategy.quickQuality.samples[0]: 4 is smaller than one step (globalBatch 8) "
     "(trials clean-n4, c30-n4, c70-n4)"),
    ("batch over workers", "quickQuality", _set("defaults.devicesPerNode", 3),
     "spec.template.stage.globalBatch: globalBatch 8 does not divide over 3 workers"),
    ("metric not produced", "quickQuality", _set("selection", {"metric": "docvqa"}),
     "spec.selection.metric: 'docvqa' is not produced by template.eval"),
    ("override refused", "quickQuality", _set("template.stage.overrides", {"nodes": 0}),
     "spec.template.stage.overrides.nodes: Input should be greater than or equal to 1 (every trial)"),
    ("reserved env", "quickQuality", _set("defaults.template", {"env": [{"name": "MASTER_ADDR", "value": "x"}]}),
     "spec.defaults.template.env[0].name: 'MASTER_ADDR' is set by the operator"),
    ("parallelism 0", "quickQuality", _set("parallelism", 0),
     "spec.parallelism: Input should be greater than or equal to 1"),
    ("group weight 0", "composition", _set("strategy.composition.groups.1.data.0.weight", 0),
     "spec.strategy.composition.groups[1].data[0].weight: Input should be greater than 0"),
    ("composition factor 1", "composition", _set("strategy.composition.factor", 1.0),
     "spec.strategy.composition.factor: Input should be less than 1"),
    ("composition without budget", "composition", _set("template.stage.budget", _DEL),
     "spec.template.stage.budget: composition trials need a budget"),
    ("candidate uri", "incremental", _set("strategy.incremental.candidates.0.data.0.uri", "http://x"),
     "spec.strategy.incremental.candidates[0].data[0].uri: String should match pattern"),
    ("negative tolerance", "incremental", _set("strategy.incremental.tolerance", -1),
     "spec.strategy.incremental.tolerance: Input should be greater than or equal to 0"),
    ("both sources", "checkpointScaling", _set("strategy.checkpointScaling.interval", 1000),
     "spec.strategy.checkpointScaling: set checkpoints (an earlier run's) or interval"),
    ("interval without tokens", "checkpointScaling", _interval({"steps": 5}),
     "spec.template.stage.budget: checkpointScaling with interval trains"),
    ("one mark", "checkpointScaling", _interval({"tokens": 1500}),
     "spec.strategy.checkpointScaling.interval: 1000 gives 1 checkpoint(s)"),
    ("anneal without data", "checkpointScaling", _set("strategy.checkpointScaling.anneal.data", []),
     "spec.strategy.checkpointScaling.anneal.data: required"),
    ("sft without data", "correlation", _set("template.stage.data", _DEL),
     "spec.template.stage.data: List should have at least 1 item after validation, not 0 (every trial)"),
    ("step name clash", "correlation", _set("template.stage.name", "pretrain"),
     "spec.template.stage.name: 'pretrain' makes its eval step 'pretrain-eval'"),
    ("plan step clash", "compare", _set("strategy.compare.plans.0.stages.1.name", "know-eval"),
     "spec.strategy.compare.plans[0].stages[1].name: step name 'know-eval' is used by"),
    ("pretrain eval needs a judge", "correlation", _set("strategy.correlation.pretrainEval", _DEL),
     "spec.judge: required: benchmarks detailcaps (caption_judge)"),
    ("two checkpoints", "correlation", _set("strategy.correlation.checkpoints.2", _DEL),
     "spec.strategy.correlation.checkpoints: List should have at least 3 items"),
    ("pretrain metric", "correlation", _set("strategy.correlation.pretrainMetric", "docvqa"),
     "spec.strategy.correlation.pretrainMetric: 'docvqa' is not produced by correlation.pretrainEval"),
    ("unequal budgets", "compare", _set("strategy.compare.plans.1.stages.0.budget", {"steps": 11}),
     "spec.strategy.compare.plans: the plans must train on the same total number of samples"),
    ("tokens budget compared", "compare", _set("strategy.compare.plans.1.stages.0.budget", {"tokens": 9000}),
     "spec.strategy.compare.plans[1]: a tokens budget cannot be compared"),
    ("eval every not whole steps", "compare", _set("strategy.compare.evalEvery", 12),
     "spec.strategy.compare.evalEvery: 12 samples is not a whole number of steps of "
     "plans[0].stages[0] (globalBatch 8): use a multiple of 8"),
    ("plan stage batch", "compare", _set("strategy.compare.plans.0.stages.1.globalBatch", 64),
     "spec.strategy.compare.plans[0].stages[1].budget.samples: 32 is smaller than one step (globalBatch 64)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_field_is_refused_naming_it(kind: str, edit: Edit, expected: str) -> None:
    obj = experiment(kind)
    edit(obj["spec"])
    with pytest.raises(SpecError) as err:
        parse_resource(obj)
    assert any(p.startswith(expected) or expected in p for p in err.value.problems), (
        err.value.problems
    )


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_every_strategy_example_is_valid(kind: str) -> None:
    spec = parse_resource(experiment(kind))[2]
    assert isinstance(spec, ExperimentSpec) and spec.strategy.kind == kind


def test_name_must_leave_room_for_the_longest_child() -> None:
    with pytest.raises(SpecError) as err:
        parse_resource(experiment(name="e" * 39))
    (problem,) = err.value.problems
    assert problem.startswith("metadata.name: 'eeee")
    assert "may be at most 38" in problem and "<name>-clean-n32-train-eval" in problem
    parse_resource(experiment(name="e" * 38))
    with pytest.raises(SpecError, match="DNS-1035"):
        parse_resource(experiment(name="1exp"))


def test_crd_refuses_two_strategies_and_both_scaling_sources() -> None:
    crd = yaml.safe_load((Path(__file__).parents[2] / "crds" / "experiment.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = spec["properties"]["strategy"]["x-kubernetes-validations"]
    assert rule["rule"].count("has(self.") == 6 and rule["rule"].endswith("== 1")
    cs = spec["properties"]["strategy"]["properties"]["checkpointScaling"]
    assert (
        "has(self.checkpoints) != has(self.interval)" in cs["x-kubernetes-validations"][0]["rule"]
    )
    assert crd["spec"]["names"]["shortNames"] == ["exp"]
    assert "storage.uri is immutable" in str(spec["properties"]["storage"])


def test_sailvl_validate_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(experiment("incremental")))
    obj = experiment("incremental")
    obj["spec"]["strategy"]["incremental"]["candidates"][0]["name"] = "Bad_Name"
    bad.write_text(yaml.safe_dump(copy.deepcopy(obj)))
    assert cli(["validate", str(good)]) == 0
    assert "Experiment/exp ok" in capsys.readouterr().out
    assert cli(["validate", str(bad)]) == 2
    assert "spec.strategy.incremental.candidates[0].name: String should match pattern" in (
        capsys.readouterr().err
    )


def test_warnings_for_a_method_that_cannot_check_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sailvl.api.validation import spec_warnings

    assert spec_warnings("Experiment", parse_resource(experiment())[2]) == []
    obj = experiment()
    obj["spec"]["strategy"]["quickQuality"]["samples"] = [64]
    (warning,) = spec_warnings("Experiment", parse_resource(obj)[2])
    assert warning.startswith("spec.strategy.quickQuality.samples: one subset size")
    obj = experiment("incremental")
    obj["spec"]["strategy"]["incremental"]["tolerance"] = 20
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(obj))
    assert cli(["validate", str(path)]) == 0
    assert "warning: spec.strategy.incremental.tolerance: 20 points" in capsys.readouterr().err
