"""The five SAIL-VL stages on the tiny model: ZeRO-2 and ZeRO-3, chained, 2 CPU workers.

ONE launch (`python -m sailvl.train.sequence`, 2 workers over gloo) runs ten job configs
in sequence: the five presets under ZeRO-2, each starting from the previous stage's
final/, then the five again under ZeRO-3, the first of them starting from the ZeRO-2
chain's last final/ (a ZeRO stage change through consolidated weights). Start-up
(imports, rendezvous) dominates a short stage on CPU, so paying it once keeps this
test at about a minute.

Checked per stage, on the consolidated weights (gathered under ZeRO-3): exactly the
modules the preset trains changed against the stage's init, and every frozen tensor is
bit-identical; the status got its final checkpoint; the budget (steps) is met.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sailvl.api.jobconfig import dump_job_config, job_config
from sailvl.api.presets import STAGE_NAMES
from sailvl.api.train import TrainStageSpec
from sailvl.model.freeze import STAGE_TRAINABLE, module_of

pytestmark = pytest.mark.timeout(900)


def write_job(
    path: Path, *, name: str, preset: str, data: str, output: str, zero: int,
    init: str | None = None, budget: dict | None = None, global_batch: int = 4,
    interval: int = 1000, lr: float | None = None, max_tokens: int = 1024, **over,
) -> Path:  # fmt: skip
    spec = {
        "preset": preset,
        "model": {"preset": "tiny", **({"init": init} if init else {})},
        "data": [{"uri": data}],
        "maxTiles": over.pop("maxTiles", 2),
        "globalBatch": global_batch,
        "packing": {"maxTokens": max_tokens},
        "budget": budget or {"steps": 2},
        "deepspeed": {"zeroStage": zero, "precision": "fp32"},
        "accelerator": "cpu",
        "devicesPerNode": 2,
        "checkpoint": {"intervalSteps": interval, "keep": 2},
        "output": output,
        **({"optimizer": {"lr": lr, "warmupRatio": 0.0}} if lr else {}),
        **over,
    }
    cfg = job_config("TrainStage", name, "default", TrainStageSpec.model_validate(spec))
    path.write_text(dump_job_config(cfg))
    return path


def train_env(tmp: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "MASTER_PORT": str(port),
        "SAILVL_METRICS_PORT": "-1",
        "SAILVL_STATUS_SINK": f"file:{tmp / 'status.json'}",
        "SAILVL_STAGING_DIR": str(tmp / "staging"),
        "DS_ACCELERATOR": "cpu",
        "DS_BUILD_OPS": "0",
        "TORCH_EXTENSIONS_DIR": os.path.expanduser("~/.cache/sailvl/torch_extensions"),
        "OMP_NUM_THREADS": "1",
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tensors(uri: str) -> dict:
    """Parameters of a saved final/ as the model sees them (names after HF's key mapping)."""
    from sailvl.model.loader import load_pretrained

    model, _ = load_pretrained(uri)
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def changed_modules(before: dict, after: dict) -> set[str]:
    assert before.keys() == after.keys()
    return {module_of(k) for k in before if not bool((before[k] == after[k]).all())}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    from sailvl.data.dataset import WriterConfig
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    uri = f"file://{tmp_path_factory.mktemp('train-data')}/ds"
    write_synthetic(
        uri, 640, SyntheticConfig(seed=0, min_size=48, max_size=128),
        WriterConfig(max_samples_per_shard=64),
    )  # fmt: skip
    return uri


def test_five_presets_chain_zero2_then_zero3(tmp_path: Path, synthetic_data: str) -> None:
    jobs, outputs, init = [], [], None
    for zero in (2, 3):
        for i, preset in enumerate(STAGE_NAMES):
            out = f"file://{tmp_path}/z{zero}-{i}-{preset}"
            jobs.append(
                write_job(
                    tmp_path / f"z{zero}-{i}.yaml",
                    name=f"z{zero}-{preset}",
                    preset=preset,
                    data=synthetic_data,
                    output=out,
                    zero=zero,
                    init=init,
                    lr=1e-3,
                )  # fmt: skip
            )
            outputs.append((zero, preset, init, out))
            init = f"{out}/final"
    cmd = [sys.executable, "-m", "sailvl.train.sequence", *map(str, jobs)]
    proc = subprocess.run(
        cmd, env=train_env(tmp_path, free_port()), capture_output=True, text=True, timeout=840
    )
    (tmp_path / "train.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]

    from sailvl.model.build import build_model

    first = {k: v.detach().clone() for k, v in build_model("tiny", seed=1234).named_parameters()}
    for zero, preset, init_uri, out in outputs:
        before = tensors(init_uri) if init_uri else first
        after = tensors(f"{out}/final")
        assert changed_modules(before, after) == set(STAGE_TRAINABLE[preset]), (zero, preset)
        assert (Path(out.removeprefix("file://")) / "final" / "_COMMITTED").exists()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["finalCheckpoint"] == f"{outputs[-1][3]}/final"
    assert status["step"] == 2 and status["samples"] == 8
