"""TrainStage checkpoint.exportEveryTokens / exportEverySteps: validation, the pure
"export due" rule, the job config, and the exports listing (what checkpointScaling
reads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sailvl.api import SpecError, parse_resource
from sailvl.train.config import from_spec
from sailvl.train.exports import Export, due, export_uri, list_exports

from .api_builders import train_stage


def stage(budget: dict, **export: int) -> dict:
    return train_stage(budget=budget, checkpoint={"intervalSteps": 5, **export})


@pytest.mark.parametrize(
    "export,budget,needle",
    [
        ({"exportEverySteps": 2, "exportEveryTokens": 5}, {"steps": 10}, "at most one of"),
        ({"exportEverySteps": 0}, {"steps": 10}, "spec.checkpoint.exportEverySteps"),
        ({"exportEveryTokens": -1}, {"steps": 10}, "spec.checkpoint.exportEveryTokens"),
        ({"exportEverySteps": 11}, {"steps": 10}, "exportEverySteps 11 is larger than the budget"),
        ({"exportEveryTokens": 900}, {"tokens": 800}, "no export would be written"),
        ({"exportEverySteps": 1}, {"steps": 5000}, "would write 5000 model folders"),
    ],
)
def test_bad_export_interval_is_rejected_naming_it(export: dict, budget: dict, needle: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_resource(stage(budget, **export))
    assert needle in str(err.value), str(err.value)
    assert "exportEvery" in str(err.value)


def test_export_interval_reaches_the_train_config() -> None:
    _, _, spec = parse_resource(stage({"steps": 9}, exportEveryTokens=5000))
    cfg = from_spec(spec, name="ts", namespace="default", world_size=2)
    assert (cfg.export_kind, cfg.export_interval) == ("tokens", 5000)
    _, _, spec = parse_resource(stage({"steps": 9}, exportEverySteps=3))
    cfg = from_spec(spec, name="ts", namespace="default", world_size=2)
    assert (cfg.export_kind, cfg.export_interval, cfg.checkpoint_interval) == ("steps", 3, 5)
    _, _, plain = parse_resource(train_stage())
    assert from_spec(plain, name="ts", namespace="d", world_size=2).export_kind is None
    # Units that do not compare (tokens against a step budget) are left to the run.
    parse_resource(stage({"steps": 3}, exportEveryTokens=10**9))


def test_due_every_n_steps() -> None:
    assert [due("steps", 3, s, 0, 0) for s in range(1, 8)] == [
        [], [], ["step-3"], [], [], ["step-6"], [],
    ]  # fmt: skip


def test_due_names_each_token_mark_reached() -> None:
    # 700 tokens per step, a mark every 1000 tokens: written by the step reaching it.
    marks = {s: due("tokens", 1000, s, 700 * (s - 1), 700 * s) for s in range(1, 7)}
    assert {s: m for s, m in marks.items() if m} == {
        2: ["tokens-1000"], 3: ["tokens-2000"], 5: ["tokens-3000"], 6: ["tokens-4000"],
    }  # fmt: skip
    # A step that passes several marks writes each; reaching a mark exactly counts.
    assert due("tokens", 100, 1, 0, 250) == ["tokens-100", "tokens-200"]
    assert due("tokens", 100, 2, 50, 100) == ["tokens-100"]
    assert due("tokens", 1000, 1, 1000, 1999) == []


def test_due_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="interval"):
        due("steps", 0, 1, 0, 0)
    with pytest.raises(ValueError, match="kind"):
        due("samples", 5, 1, 0, 0)


def test_list_exports_reads_only_recorded_exports(tmp_path: Path) -> None:
    out = f"file://{tmp_path}/stage"
    folder = tmp_path / "stage" / "export"
    # One step may reach two marks: ordered by number, not by name (1000 < 900 as text).
    marks = (("tokens-2000", 9, 2100), ("tokens-1000", 5, 1200), ("tokens-900", 5, 1200))
    for name, step, tokens in marks:
        (folder / name).mkdir(parents=True)
        record = {"name": name, "step": step, "tokens": tokens, "samples": step * 8}
        record["uri"] = export_uri(out, name)
        (folder / f"{name}.json").write_text(json.dumps(record))
    # A folder still being written (no record yet) is not listed.
    (folder / "tokens-3000").mkdir()
    (folder / "tokens-3000" / "model.safetensors").write_bytes(b"partial")
    assert list_exports(out) == [
        Export(name="tokens-900", step=5, tokens=1200, samples=40, uri=f"{out}/export/tokens-900"),
        Export(name="tokens-1000", step=5, tokens=1200, samples=40,
               uri=f"{out}/export/tokens-1000"),
        Export(name="tokens-2000", step=9, tokens=2100, samples=72,
               uri=f"{out}/export/tokens-2000"),
    ]  # fmt: skip
    assert list_exports(f"file://{tmp_path}/none") == []
