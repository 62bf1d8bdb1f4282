"""`sailvl run`: the embedded executor end to end (subprocesses, DeepSpeed on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "examples" / "demo" / "curriculum.yaml"


def reduced_curriculum() -> dict:
    """The demo curriculum cut down: caption, two stages (one gated eval), final eval.

    The gate here (threshold 0.0) only checks the pass path; the gate that must fail
    is in test_local_stop_resume.py."""
    doc = yaml.safe_load(DEMO.read_text())
    doc["metadata"] = {"name": "e2e", "annotations": {"sailvl.io/local-setup": "synthetic-small"}}
    spec = doc["spec"]
    spec["caption"]["generation"] = {"maxNewTokens": 4}
    keep = [spec["stages"][0], spec["stages"][2]]
    for st in keep:
        st["budget"] = {"steps": 3}
        st["globalBatch"] = 4
        st.pop("eval", None)
        st.pop("gate", None)
    keep[0]["eval"] = {"benchmarks": [{"name": "synth-ocr"}]}
    keep[0]["gate"] = {"metric": "synth-ocr", "threshold": 0.0}
    spec["stages"] = keep
    spec["evalGeneration"] = {"maxNewTokens": 4, "batchSize": 16}
    return doc


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DS_ACCELERATOR": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", "sailvl.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_invalid_curriculum_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    doc = reduced_curriculum()
    doc["spec"]["stages"][1]["budget"] = {"steps": 0}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = run(["run", str(path), "--runs", str(tmp_path / "runs")], tmp_path)
    assert out.returncode == 2, out.stderr
    assert "spec.stages[1].budget.steps" in out.stderr
    line = next(i + 1 for i, t in enumerate(path.read_text().splitlines()) if "steps: 0" in t)
    assert f"line {line}:" in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_reduced_curriculum_runs_resumes_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(reduced_curriculum(), sort_keys=False))
    runs = tmp_path / "runs"
    out = run(["run", str(path), "--runs", str(runs)], tmp_path)
    work = runs / "e2e"
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    state = json.loads((work / "state.json").read_text())
    phases = {k: v["phase"] for k, v in state["steps"].items()}
    assert phases == {
        "baseline-eval": "Succeeded",
        "caption": "Succeeded",
        "pretrain-alignment": "Succeeded",
        "pretrain-alignment-eval": "Succeeded",
        "sft-knowledge": "Succeeded",
        "final-eval": "Succeeded",
    }
    # The second stage started from the first stage's consolidated weights.
    cfg = yaml.safe_load((work / "local" / "sft-knowledge" / "job.yaml").read_text())
    assert cfg["spec"]["model"]["init"] == f"file://{work}/pretrain-alignment/final"
    assert (work / "pretrain-alignment" / "final" / "config.json").exists()
    assert state["steps"]["pretrain-alignment"]["losses"], "loss was never reported"
    assert "synth-ocr" in state["steps"]["final-eval"]["scores"]
    # The held-out benchmarks run in the baseline and the final eval, and the report says
    # which benchmarks are held out.
    for step in ("baseline-eval", "final-eval"):
        assert {"heldout-ocr", "heldout-mcq", "heldout-yesno"} <= set(
            state["steps"][step]["scores"]
        )
    report = (work / "report" / "summary.md").read_text()
    assert "Trained vs untrained baseline" in report and (work / "report" / "loss.png").exists()
    assert "| synth-ocr | in-distribution |" in report and "| heldout-ocr | held-out |" in report
    # The caption step's Table 1 statistics, one row per language the captions are in.
    assert "| Dataset | Lang | Samples | Avg. Length | Unique 2-gram |" in report
    assert "| captions | en |" in report or "| captions | zh |" in report
    # A rerun continues from the state: nothing left to do, nothing run again.
    again = run(["run", str(path), "--runs", str(runs)], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((work / "state.json").read_text())["steps"] == state["steps"]
