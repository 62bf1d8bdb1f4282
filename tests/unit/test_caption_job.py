"""`sailvl caption` job entry: spec mapping, status aggregation over pods, Table 1 stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sailvl.api.caption import CaptionJobSpec
from sailvl.caption.main import config_from_spec, run_job
from sailvl.runtime.report import StatusReporter, read_file_status
from tests.unit.test_caption_worker import FakeBackend, make_dataset


def spec(tmp_path: Path, **kw: Any) -> CaptionJobSpec:
    return CaptionJobSpec.model_validate(
        {
            "input": f"file://{tmp_path}/in",
            "output": f"file://{tmp_path}/out",
            "model": {"uri": "file:///m"},
            "backend": "transformers",
            "accelerator": "cpu",
            "filter": {"minChars": 1, "maxChars": 500},
            "statsSample": 50,
            **kw,
        }
    )


def test_spec_maps_onto_worker_config(tmp_path: Path) -> None:
    s = spec(
        tmp_path,
        parallelism=4,
        engine={"batchSize": 7, "maxDynamicPatch": 3},
        prompt={"language": "zh", "useAltText": False},
        accelerator="ascend",
        backend="lmdeploy",
        devicesPerPod=2,
        filter={"dedup": False},
    )
    cfg = config_from_spec(s, "cj", "team")
    assert (cfg.shard_count, cfg.engine.batch_size, cfg.engine.max_dynamic_patch) == (4, 7, 3)
    assert cfg.engine.device == "npu" and cfg.backend == "lmdeploy"
    assert (cfg.prompt.lang, cfg.prompt.use_alt_text) == ("zh", False)
    assert cfg.filter.dedup == "none" and (cfg.job_name, cfg.job_namespace) == ("cj", "team")


@pytest.mark.parametrize("assignment", ["static", "dynamic"])
def test_two_pods_report_summed_status_and_stats(tmp_path: Path, assignment: str) -> None:
    """Pods run one after the other: static splits 2 + 2, dynamic lets pod 0 take all 4
    (pod 1 finds nothing left); the summed status is the same."""
    make_dataset(f"file://{tmp_path}/in", 12, per_shard=3)  # 4 shards
    sink = tmp_path / "status.json"
    rcs = []
    for k in range(2):
        cfg = config_from_spec(spec(tmp_path, parallelism=2, assignment=assignment), "cj", "ns")
        cfg.shard_index = k
        rep = StatusReporter("CaptionJob", "cj", "ns", sink=f"file:{sink}", min_interval=0)
        rcs.append(run_job(cfg, rep, backend=FakeBackend()))
    assert rcs == [0, 0]
    status = read_file_status(sink)
    assert status["shardsTotal"] == 4 and status["shardsDone"] == 4
    assert status["shardsFailed"] == 0
    assert status["samples"] == 12 - 2 - 1  # rows 3, 10 broken; row 5 empty caption
    stats = status["stats"]
    assert stats["en_samples"] + stats.get("zh_samples", 0) == 9
    assert stats["en_avg_length"] > 3
    pod1 = json.loads((tmp_path / "out" / "_progress" / "pod-1.json").read_text())
    if assignment == "static":
        assert (pod1["shards_total"], pod1["shards_done"]) == (2, 2)
    else:
        assert (pod1["shards_total"], pod1["shards_done"]) == (4, 0)
