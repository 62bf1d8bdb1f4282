"""Done-when of issue 16: a CaptionJob recaptions WebDataset tars directly.

img2dataset-style tars (with a failed download and a broken image) are uploaded to the
real S3 server; a CaptionJob spec with `inputFormat: webdataset` becomes the pod's job
config, and `sailvl caption --config` runs the transformers backend with the tiny model
on it. Checked: the output is a dataset (manifest, one `<tar stem>.parquet` per tar)
with every tar key exactly once, the images byte-identical, the web text as
`alt_text`, generated captions on the good rows, and `no_image` / `broken_image` on
the others.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sailvl.api.caption import CaptionJobSpec
from sailvl.api.jobconfig import dump_job_config, job_config
from sailvl.data.dataset import Dataset
from sailvl.storage import open_store
from tests.integration.test_import_s3 import upload
from tests.unit.test_import_fixtures import write_webdataset

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # a tiny-model subprocess
ROOT = Path(__file__).parents[2]


def test_captionjob_reads_webdataset_tars_on_s3(s3_env: str, tmp_path: Path) -> None:
    from sailvl.model.build import build_model
    from sailvl.model.checkpoint import save_checkpoint
    from sailvl.model.tokenizer import build_tiny_tokenizer

    base = f"s3://{s3_env}"
    save_checkpoint(build_model("tiny"), build_tiny_tokenizer(), f"{base}/model")
    local, exp = write_webdataset(tmp_path / "wds", shards=2, per_shard=2, duplicate=False)
    upload(local, f"{base}/wds")
    spec = CaptionJobSpec.model_validate(
        {
            "input": f"{base}/wds",
            "inputFormat": "webdataset",
            "output": f"{base}/captions",
            "model": {"uri": f"{base}/model", "preset": "tiny"},
            "backend": "transformers",
            "accelerator": "cpu",
            "devicesPerPod": 0,
            "engine": {"batchSize": 4, "maxDynamicPatch": 2},
            # The random tiny model emits "\n" forever when greedy: sample so captions exist.
            "generation": {"maxNewTokens": 12, "temperature": 1.0},
            "filter": {"minChars": 1, "dedup": False},
            "statsSample": 0,
        }
    )
    cfg = tmp_path / "job.yaml"
    cfg.write_text(dump_job_config(job_config("CaptionJob", "wds", "default", spec)))
    env = {**os.environ, "SAILVL_METRICS_PORT": "0",
           "SAILVL_STATUS_SINK": f"file:{tmp_path / 'status.json'}"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "sailvl.cli", "caption", "--config", str(cfg)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    ds = Dataset.open(f"{base}/captions")
    assert [s.path for s in ds.shards] == ["00000.parquet", "00001.parquet"]
    rows = [r for i in range(len(ds.shards)) for r in ds.read_shard(i).rows]
    assert all(r is not None for r in rows)
    by_id = {r["id"]: r for r in rows if r}
    assert len(by_id) == len(rows) and set(by_id) == set(exp.samples) | set(exp.rejects)
    for sid, sample in exp.samples.items():
        assert by_id[sid]["images"] == sample["images"]
        assert by_id[sid]["alt_text"] == sample["alt_text"]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["shardsDone"] == 2 and status["shardsFailed"] == 0
    out = open_store(f"{base}/captions")
    kinds: Counter[str] = Counter()
    for s in ds.shards:
        table = pq.read_table(io.BytesIO(out.read_bytes(s.path)))
        for sid, st, cap in zip(*(table.column(c).to_pylist() for c in
                                  ("id", "caption_status", "caption")), strict=True):  # fmt: skip
            kinds[st] += 1
            if sid in exp.rejects:
                assert st == {"missing_image": "no_image",
                              "undecodable_image": "broken_image"}[exp.rejects[sid]]  # fmt: skip
            assert (cap != "") == (st == "ok")
    assert kinds["ok"] > 0, kinds
