"""Every file under examples/ passes the plan checks the trainer runs at start-up; broken
variants of them fail naming the field; `sailvl validate` exits 2 / warns."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import SpecError, parse_resource
from sailvl.api.compose import stage_spec
from sailvl.api.plan import check_plan, spec_plan
from sailvl.api.validation import spec_warnings
from sailvl.cli import main as cli

ROOT = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(ROOT.rglob("*.yaml"))
RUN = "file:///tmp/sailvl-run"  # ${RUN} of the local-run examples


def _docs(path: Path) -> list[dict[str, Any]]:
    text = path.read_text().replace("${RUN}", RUN)
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    return [d for d in docs if str(d.get("apiVersion")).startswith("sailvl.io/")]


def _stage_specs(kind: str, spec: Any) -> list[Any]:
    if kind == "TrainStage":
        return [spec]
    if kind == "Curriculum":
        return [stage_spec(spec, i) for i in range(len(spec.stages))]
    if kind == "Experiment":  # every trial's TrainStages, as the operator builds them
        from sailvl.experiment.trials import child_spec, trial_steps, trials

        return [
            child_spec(spec, t, st, {})
            for t in trials(spec)
            for st in trial_steps(spec, t)
            if st.kind == "TrainStage"
        ]
    return []


def test_examples_found() -> None:
    assert {p.name for p in FILES} >= {"curriculum.yaml", "trainstage.yaml"}
    assert sum(len(_docs(p)) for p in FILES) >= 5
    assert any(p.parent.name == "demo" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_example_passes_the_plan(path: Path) -> None:
    for doc in _docs(path):
        kind, _, spec = parse_resource(doc)
        for stage in _stage_specs(kind, spec):
            assert check_plan(spec_plan(stage)) == []


def test_paper_recipe_runs_as_written() -> None:
    (doc,) = _docs(ROOT / "curriculum.yaml")
    _, _, cur = parse_resource(doc)
    stages = [stage_spec(cur, i).resolved() for i in range(5)]  # type: ignore[arg-type]
    assert [s.global_batch for s in stages] == [1920, 2048, 512, 512, 512]  # Table 3
    for s in stages:
        assert s.global_batch % (s.nodes * s.devices_per_node) == 0
    assert spec_warnings("Curriculum", cur) == []
    assert cur.stages[0].gate.threshold == 20  # type: ignore[union-attr]


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = value
    return out


CUR = _docs(ROOT / "curriculum.yaml")[0]
TS = _docs(ROOT / "trainstage.yaml")[0]
DEMO = _docs(ROOT / "demo" / "curriculum.yaml")[0]
BROKEN = [
    # The example as it was: 1920 over 32 x 8 workers.
    ("cur-align-256", _set(CUR, "spec.stages.0.overrides", {}), "spec.stages[0].globalBatch"),
    ("cur-7-per-node", _set(CUR, "spec.defaults.devicesPerNode", 7), "globalBatch"),
    ("cur-batch-1000", _set(CUR, "spec.stages.2.globalBatch", 1000), "spec.stages[2].globalBatch"),
    ("cur-budget-small", _set(CUR, "spec.stages.3.budget", {"samples": 100}), "budget.samples"),
    ("cur-max-tokens", _set(CUR, "spec.defaults.packing.maxTokens", 2048), "maxTokens"),
    ("cur-max-images", _set(CUR, "spec.defaults.packing.maxImages", 8), "packing.maxImages"),
    ("cur-gate-scale", _set(CUR, "spec.stages.0.gate.threshold", 150), "gate.threshold"),
    ("cur-gate-metric", _set(CUR, "spec.stages.0.gate.metric", "ocr_vqa"), "gate.metric"),
    ("cur-no-judge", _set(CUR, "spec.judge", None), "spec.judge"),
    ("ts-3-nodes", _set(TS, "spec.nodes", 3), "spec.globalBatch"),
    ("ts-no-llm", _set(TS, "spec.model", {"preset": "8b"}), "spec.model.llm"),
    ("demo-batch-15", _set(DEMO, "spec.stages.1.globalBatch", 15), "spec.stages[1].globalBatch"),
    ("demo-tiles", _set(DEMO, "spec.defaults.packing.maxTokens", 64), "maxTokens"),
]


@pytest.mark.parametrize("doc,needle", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_variants_fail_naming_the_field(doc: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_resource(doc)
    assert needle in str(err.value), err.value


def test_validate_exits_2_naming_the_field(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(BROKEN[0][1]))
    assert cli(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "spec.stages[0].globalBatch: globalBatch 1920 does not divide over 256" in err
    assert "1792 or 2048" in err and "nodes 30 or 40" in err


def test_validate_warns_on_a_fraction_threshold(tmp_path: Path, capsys: Any) -> None:
    doc = _set(CUR, "spec.stages.0.gate.threshold", 0.2)
    path = tmp_path / "warn.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert cli(["validate", str(path)]) == 0
    out = capsys.readouterr()
    assert "warning: spec.stages[0].gate.threshold: 0.2 on idl-wds" in out.err
    assert "write 20 for 0.2" in out.err
    assert "Curriculum/sailvl-2b ok" in out.out
