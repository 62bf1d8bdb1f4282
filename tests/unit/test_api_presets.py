"""Presets, overrides, composition of a Curriculum, and the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sailvl.api import TABLE3, TrainStageSpec, parse_resource, parse_spec
from sailvl.api.compose import stage_spec, steps
from sailvl.api.jobconfig import job_config, load_job_config

from .api_builders import curriculum, train_stage

EXAMPLES = sorted(Path(__file__).parents[2].joinpath("examples").rglob("*.yaml"))


@pytest.mark.parametrize("size", ["2b", "8b"])
@pytest.mark.parametrize("stage", list(TABLE3["2b"]))
def test_preset_fills_table3(size: str, stage: str) -> None:
    obj = train_stage(preset=stage, model={"preset": size, "llm": "s3://m/llm"}, globalBatch=None)
    obj["spec"].pop("globalBatch")
    spec = parse_resource(obj)[2]
    assert isinstance(spec, TrainStageSpec)
    r = spec.resolved()
    row = TABLE3[size][stage]
    assert r.trainable == list(row.trainable)
    assert r.max_tiles == row.max_tiles
    assert r.global_batch == row.global_batch
    assert r.optimizer.lr == row.lr


def test_table3_values() -> None:
    assert TABLE3["2b"]["pretrain-alignment"].global_batch == 1920
    assert TABLE3["8b"]["pretrain-alignment"].lr == 1e-3
    assert TABLE3["2b"]["sft-preference"].max_visual_tokens(256) == 2560
    assert TABLE3["8b"]["pretrain-advance"].max_visual_tokens(256) == 2048


def test_overrides_win_over_preset() -> None:
    obj = train_stage(optimizer={"lr": 3e-4}, maxTiles=4, trainable=["llm"], globalBatch=64)
    r = parse_resource(obj)[2].resolved()  # type: ignore[attr-defined]
    assert (r.optimizer.lr, r.max_tiles, r.trainable, r.global_batch) == (3e-4, 4, ["llm"], 64)


def test_curriculum_chains_checkpoints() -> None:
    cur = parse_resource(curriculum())[2]
    names = [s.name for s in steps(cur)]  # type: ignore[arg-type]
    assert names == ["caption", "align", "align-eval", "sft", "final-eval"]
    first, second = stage_spec(cur, 0), stage_spec(cur, 1)  # type: ignore[arg-type]
    assert first.data[0].uri == "file:///runs/demo/caption"
    assert first.output == "file:///runs/demo/align"
    assert second.model.init == "file:///runs/demo/align/final"
    assert second.accelerator == "cpu" and second.devices_per_node == 2


def test_job_config_round_trip(tmp_path: Path) -> None:
    spec = parse_spec("TrainStage", train_stage()["spec"])
    cfg = job_config("TrainStage", "ts", "default", spec)
    assert cfg["spec"]["optimizer"]["lr"] == 1e-4  # resolved from the preset
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(cfg))
    kind, name, again = load_job_config(path)
    assert (kind, name) == ("TrainStage", "ts")
    assert again == spec.resolved()  # type: ignore[attr-defined]


def test_examples_exist() -> None:
    kinds = set()
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            # secrets.yaml holds example Secrets; throughput-*.yaml is `sailvl plan` input.
            if doc.get("apiVersion", "").startswith("sailvl.io/"):
                kinds.add(doc["kind"])
    assert kinds == {"Curriculum", "CaptionJob", "TrainStage", "EvalSuite", "DataJob", "Experiment"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(p.parents[1])) for p in EXAMPLES])
def test_examples_load(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    if "${RUN}" in text:  # a local-run example: loaded the way `sailvl run` loads it
        from sailvl.local.source import load

        load(path, tmp_path, None)
        return
    for doc in yaml.safe_load_all(text):
        if "apiVersion" not in doc:  # a throughput file, the input of `sailvl plan`
            from sailvl.api.compute import Throughputs

            assert Throughputs.parse(doc).stages
            continue
        if doc["apiVersion"] == "v1" and doc["kind"] == "Secret":
            assert set(doc["stringData"]) and doc["metadata"]["name"]
            continue
        parse_resource(doc)


def test_paper_recipe_example() -> None:
    doc = yaml.safe_load((EXAMPLES[0].parent / "curriculum.yaml").read_text())
    cur = parse_resource(doc)[2]
    stages = [stage_spec(cur, i).resolved() for i in range(5)]  # type: ignore[arg-type]
    assert [s.preset for s in stages] == list(TABLE3["2b"])
    assert stages[0].budget.tokens == 131_000_000_000
    assert stages[0].global_batch == 1920 and stages[2].max_tiles == 10
