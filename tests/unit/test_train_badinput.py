"""Bad input to `sailvl train`: a clear message in the TrainStage status and exit 2,
found by the launcher before any worker (or torch) starts."""

from __future__ import annotations

import json
import os
from argparse import Namespace
from pathlib import Path

import pytest

from sailvl.api.jobconfig import dump_job_config, job_config
from sailvl.api.train import TrainStageSpec
from sailvl.train.main import main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    uri = f"file://{tmp_path_factory.mktemp('bad-input')}/ds"
    write_synthetic(uri, 8, SyntheticConfig(seed=0, min_size=48, max_size=64))
    return uri


_DEVICE_ENV = (
    "DS_ACCELERATOR",
    "TORCH_DEVICE_BACKEND_AUTOLOAD",
    "DS_BUILD_OPS",
    "TORCH_EXTENSIONS_DIR",
)


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: dict, env: dict | None = None):
    status = tmp_path / "status.json"
    monkeypatch.setenv("SAILVL_STATUS_SINK", f"file:{status}")
    monkeypatch.setenv("SAILVL_TERMINATION_LOG", str(tmp_path / "termination-log"))
    for k in ("NNODES", "NODE_RANK", "NPROC_PER_NODE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.delenv(k, raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "job.yaml"
    cfg = job_config("TrainStage", "bad", "ns", TrainStageSpec.model_validate(spec))
    path.write_text(dump_job_config(cfg))
    # main() sets DS_ACCELERATOR & co. in os.environ for the accelerator it was given
    # (prepare_environment); an ascend case left DS_ACCELERATOR=npu behind, and a later
    # in-process DeepSpeed call (sailvl export in test_model_export) then failed asking
    # for torch_npu. Put them back as they were.
    saved = {k: os.environ.get(k) for k in _DEVICE_ENV}
    try:
        rc = main(Namespace(config=path))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rc, json.loads(status.read_text()) if status.exists() else {}


def base(dataset: str, tmp_path: Path, **over) -> dict:
    spec = {
        "preset": "sft-knowledge", "model": {"preset": "tiny"}, "data": [{"uri": dataset}],
        "maxTiles": 2, "globalBatch": 4, "packing": {"maxTokens": 1024},
        "budget": {"steps": 2}, "accelerator": "cpu", "devicesPerNode": 2,
        "output": f"file://{tmp_path}/out",
    }  # fmt: skip
    return {**spec, **over}


@pytest.mark.parametrize(
    ("over", "env", "needle"),
    [
        ({"model": {"preset": "tiny", "init": "file:///nonexistent/final"}}, {},
         "model.init: no Hugging Face checkpoint"),
        ({"data": [{"uri": "file:///nonexistent/ds"}]}, {}, "data[0].uri: cannot read dataset"),
        ({"budget": {"samples": 2}}, {}, "smaller than one step"),
        ({"packing": {"maxTokens": 1024, "maxImages": 2}}, {}, "packing.maxImages: 2 cannot"),
        ({"globalBatch": 6}, {"NPROC_PER_NODE": "4"}, "globalBatch 6 does not divide over 4"),
        ({"accelerator": "ascend"}, {}, "torch_npu"),
    ],
)  # fmt: skip
def test_bad_input_reaches_status_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str, over: dict, env: dict,
    needle: str,
) -> None:  # fmt: skip
    import importlib.util

    if over.get("accelerator") == "ascend" and importlib.util.find_spec("torch_npu"):
        pytest.skip("torch_npu is installed here")
    rc, status = run(tmp_path, monkeypatch, base(dataset, tmp_path, **over), env)
    assert rc == 2
    assert needle in status["message"], status
    assert status["error"] == "ConfigError"
    # The kubelet copies the termination message into the pod's status: the error is
    # there even when the status patch could not be sent.
    assert needle in (tmp_path / "termination-log").read_text()


def test_preflight_imports_no_torch(tmp_path: Path, dataset: str) -> None:
    """The launcher fails fast: a bad config never imports torch (checked in a fresh
    interpreter, since this test process may have imported it already)."""
    import subprocess
    import sys

    path = tmp_path / "job.yaml"
    spec = base(dataset, tmp_path, budget={"samples": 2})
    path.write_text(
        dump_job_config(job_config("TrainStage", "b", "ns", TrainStageSpec.model_validate(spec)))
    )
    code = (
        "import sys; from argparse import Namespace; from pathlib import Path;"
        "from sailvl.train.main import main;"
        f"rc = main(Namespace(config=Path({str(path)!r})));"
        "print(rc, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-2:] == ["2", "False"], out.stderr[-2000:]
