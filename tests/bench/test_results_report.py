"""The benchmark artefacts: what a result file records and the table made from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.report import render
from tests.bench.results import spread, write_result


def test_result_file_records_inputs_machine_versions_and_spreads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAILVL_BENCH_RESULTS", str(tmp_path))
    path = write_result(
        "packing",
        title="Packed vs padded",
        inputs={"samples": 32, "rounds": 3},
        figures={"packed tokens/s": spread([10.0, 30.0, 20.0], "tokens/s")},
        ratio={"name": "packed / padded", "target": ">= 1.8x", **spread([1.9, 2.1, 2.0])},
    )
    res = json.loads(path.read_text())
    assert res["inputs"] == {"samples": 32, "rounds": 3}
    fig = res["figures"]["packed tokens/s"]
    assert (fig["min"], fig["median"], fig["max"], fig["rounds"]) == (10.0, 20.0, 30.0, 3)
    assert res["ratio"]["median"] == 2.0 and res["ratio"]["target"] == ">= 1.8x"
    assert res["machine"]["cpus"] >= 1 and res["machine"]["python"]
    assert "torch" in res["versions"] and res["date"].endswith("Z")

    table = render(tmp_path)
    row = next(line for line in table.splitlines() if "results/packing.json" in line)
    assert "**2.00x** (1.90-2.10, 3 rounds)" in row and ">= 1.8x" in row
    assert res["date"] in row and "samples=32" in row
    assert "no result file yet for: caption, loader" in table  # the benches not run


def test_spread_needs_values() -> None:
    with pytest.raises(ValueError):
        spread([])
