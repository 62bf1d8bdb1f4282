"""Imported data trains: the four formats' imports as the data of one tiny stage.

Each format's fixture is imported (WebDataset with `--caption-from-alt-text`, so its
web text is the caption to learn), and one `sft-knowledge` stage of the tiny model
(2 CPU workers over gloo, ZeRO-2, 2 steps) reads the four datasets as a weighted
mixture. Checked: the run succeeds, reaches its step budget on the expected number
of samples and commits its final checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sailvl.api.jobconfig import dump_job_config, job_config
from sailvl.api.train import TrainStageSpec
from sailvl.cli import main
from tests.integration.test_train_stages import free_port, train_env
from tests.unit.test_import_fixtures import (
    write_hfparquet,
    write_internvl,
    write_llava,
    write_webdataset,
)

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # 2-process DeepSpeed stage


def test_four_imported_formats_train_one_stage(tmp_path: Path) -> None:
    sources = {
        "llava": (write_llava(tmp_path / "llava")[0], []),
        "internvl": (write_internvl(tmp_path / "internvl")[0], []),
        "webdataset": (write_webdataset(tmp_path / "wds")[0], ["--caption-from-alt-text"]),
        "hfparquet": (write_hfparquet(tmp_path / "hf")[0], []),
    }
    data = []
    for fmt, (src, extra) in sources.items():
        out = f"file://{tmp_path}/imported/{fmt}"
        argv = ["data", "import", str(src), out, "--max-reject-ratio", "1", "--no-progress"]
        assert main([*argv, *extra]) == 0, fmt
        data.append({"uri": out, "weight": 1.0})
    spec = TrainStageSpec.model_validate(
        {
            "preset": "sft-knowledge",
            "model": {"preset": "tiny"},
            "data": data,
            "maxTiles": 2,
            "globalBatch": 4,
            "packing": {"maxTokens": 1024},
            "budget": {"steps": 2},
            "deepspeed": {"zeroStage": 2, "precision": "fp32"},
            "accelerator": "cpu",
            "devicesPerNode": 2,
            "checkpoint": {"intervalSteps": 1000, "keep": 1},
            "output": f"file://{tmp_path}/stage",
        }
    )
    job = tmp_path / "stage.yaml"
    job.write_text(dump_job_config(job_config("TrainStage", "imported", "default", spec)))
    cmd = [sys.executable, "-m", "sailvl.train.sequence", str(job)]
    proc = subprocess.run(
        cmd, env=train_env(tmp_path, free_port()), capture_output=True, text=True, timeout=540
    )
    (tmp_path / "train.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["step"] == 2 and status["samples"] == 8
    assert status["finalCheckpoint"] == f"file://{tmp_path}/stage/final"
    assert (tmp_path / "stage" / "final" / "_COMMITTED").exists()
