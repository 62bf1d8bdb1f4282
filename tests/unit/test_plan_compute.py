"""`sailvl plan`: device-hours per step of a Curriculum from a throughput file, against
hand-computed figures and the paper's reported compute; bad input exits 2 naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import parse_resource
from sailvl.api.compute import Throughputs, paper_comparison, plan_compute
from sailvl.cli import main

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "curriculum.yaml"


def recipe() -> Any:
    return parse_resource(yaml.safe_load(RECIPE.read_text()))[2]


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "tp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_hours_match_hand_arithmetic() -> None:
    tp = Throughputs.parse(
        {"device": "X", "default": {"tokensPerSecond": 1000, "tokensPerSample": 2000}}
    )
    rows = {r.name: r for r in plan_compute(recipe(), tp)}
    # 131e9 tokens at 1,000 tokens/s per device; 240 devices (30 nodes x 8)
    align = rows["pretrain-alignment"]
    assert align.device_hours == pytest.approx(131e9 / 1000 / 3600)
    assert (align.devices, align.wall_hours) == (240, pytest.approx(131e9 / 1000 / 3600 / 240))
    # 21M samples round UP to 41,016 steps of 512 = 21,000,192 samples, 2,000 tokens each
    know = rows["sft-knowledge"]
    assert know.device_hours == pytest.approx(21_000_192 * 2000 / 1000 / 3600)
    assert "41,016 steps" in know.work and know.devices == 256
    cmp = dict((p, (ours, paper)) for p, ours, paper in paper_comparison("2b", list(rows.values())))
    assert cmp["pretrain"] == (pytest.approx(655e9 / 1000 / 3600), 90_053)
    assert cmp["sft"][1] == 10_992 and cmp["all"][1] == 101_045
    assert [p for p, _, _ in paper_comparison("8b", list(rows.values()))] == ["all"]


def test_stage_rates_override_default_and_samples_rates() -> None:
    tp = Throughputs.parse(
        {
            "device": "X",
            "stages": {
                "sft-preference": {"samplesPerSecond": 2.0},
                "pretrain-advance": {"tokensPerSecond": 4000},
            },
            "default": {"tokensPerSecond": 1000, "tokensPerSample": 2000},
        }
    )
    rows = {r.name: r for r in plan_compute(recipe(), tp)}
    assert rows["sft-preference"].device_hours == pytest.approx(6836 * 512 / 2.0 / 3600)
    assert rows["pretrain-advance"].device_hours == pytest.approx(524e9 / 4000 / 3600)


def test_cli_prints_table_and_paper_comparison(tmp_path: Path, capsys: Any) -> None:
    tp = ROOT / "examples" / "throughput-paper-implied.yaml"
    assert main(["plan", str(RECIPE), "--throughput", str(tp)]) == 0
    out = capsys.readouterr().out
    assert "pretrain-alignment" in out and "sft-preference" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("pretrain") and "paper" in x)
    assert "90,053" in line and "ratio 1.00" in line  # the example file is the paper's rates


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"device": "X", "default": {"tokensPerSecond": 1000}},
            "stages.sft-knowledge: its budget is in samples",
        ),
        (
            {"device": "X", "stages": {"pretrain-alignment": {"tokensPerSecond": 1}}},
            "stages.pretrain-advance: no throughput",
        ),
        (
            {"device": "X", "default": {"tokensPerSecond": -5}},
            "default.tokensPerSecond: must be a positive number",
        ),
        (
            {"device": "X", "default": {"tokenPerSecond": 5}},
            "default.tokenPerSecond: unknown field",
        ),
        ({"default": {"tokensPerSecond": 5}}, "device: required"),
    ],
)
def test_bad_throughput_file_exits_2_naming_it(
    tmp_path: Path, capsys: Any, data: dict[str, Any], message: str
) -> None:
    assert main(["plan", str(RECIPE), "--throughput", str(write(tmp_path, data))]) == 2
    assert message in capsys.readouterr().err


def test_invalid_curriculum_exits_2(tmp_path: Path, capsys: Any) -> None:
    doc = yaml.safe_load(RECIPE.read_text())
    doc["spec"]["stages"][0]["budget"] = {"tokens": 0}
    bad = tmp_path / "cur.yaml"
    bad.write_text(yaml.safe_dump(doc))
    tp = write(tmp_path, {"device": "X", "default": {"tokensPerSecond": 1}})
    assert main(["plan", str(bad), "--throughput", str(tp)]) == 2
    assert "budget.tokens" in capsys.readouterr().err
