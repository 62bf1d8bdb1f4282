"""Done-when of issue 7: the transformers backend with the tiny model captions a
synthetic dataset on a real S3 server; a worker SIGKILLed mid-run and rerun leaves every
input id exactly once in the output."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sailvl.data.dataset import Dataset, WriterConfig
from sailvl.data.synthetic import write_synthetic
from sailvl.storage import open_store
from tests.fixtures.s3server import S3Server, assert_server_is_expected

pytestmark = pytest.mark.slow  # two tiny-model subprocesses: ~2-4 min on 2 busy cores
SHARDS, PER_SHARD = 6, 2


def _ids(uri: str, column: str = "id") -> list[str]:
    store = open_store(uri)
    out: list[str] = []
    for key in store.list(""):
        if key.endswith(".parquet"):
            out += pq.read_table(io.BytesIO(store.read_bytes(key))).column(column).to_pylist()
    return out


def _worker(cfg_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sailvl.caption.cli", "--config", str(cfg_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )


def test_caption_kill_and_rerun_on_s3(s3_env: str, s3_server: S3Server, tmp_path: Path) -> None:
    assert_server_is_expected(s3_server)  # SeaweedFS unless SAILVL_TEST_S3=moto
    from sailvl.model.build import build_model
    from sailvl.model.checkpoint import save_checkpoint
    from sailvl.model.tokenizer import build_tiny_tokenizer

    bucket = s3_env
    base = f"s3://{bucket}"
    save_checkpoint(build_model("tiny"), build_tiny_tokenizer(), f"{base}/model")
    write_synthetic(
        f"{base}/in", SHARDS * PER_SHARD, writer=WriterConfig(max_samples_per_shard=PER_SHARD)
    )
    in_ids = _ids(f"{base}/in")
    assert len(in_ids) == SHARDS * PER_SHARD
    cfg = {
        "input_uri": f"{base}/in",
        "output_uri": f"{base}/out",
        "model_uri": f"{base}/model",
        "backend": "transformers",
        "model_name": "tiny-random",
        "engine": {"batch_size": 2, "max_dynamic_patch": 2, "device": "cpu"},
        # The random tiny model emits "\n" forever when greedy: sample so captions exist.
        "generation": {"max_new_tokens": 12, "temperature": 1.0, "seed": 1},
        "filter": {"min_chars": 1, "dedup": "exact"},
        "prompt": {"lang": "auto", "use_alt_text": True},
    }
    cfg_path = tmp_path / "caption.json"
    cfg_path.write_text(json.dumps(cfg))
    out = open_store(f"{base}/out")

    # Run 1: SIGKILL as soon as the first shard is committed (the next is in flight).
    proc = _worker(cfg_path)
    deadline = time.monotonic() + 240
    committed: list[str] = []
    while time.monotonic() < deadline and proc.poll() is None:
        committed = [k for k in out.list("") if k.endswith(".parquet")]
        if committed:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    after_kill = [k for k in out.list("") if k.endswith(".parquet")]
    assert 1 <= len(after_kill) < SHARDS, after_kill
    assert not out.exists("manifest.json")
    # A shard is written first, then its index object: the kill can fall in between.
    indexed = [k for k in out.list("_index/") if k.endswith(".json")]

    # Run 2: finishes the rest, skipping what run 1 committed.
    proc = _worker(cfg_path)
    log = proc.communicate(timeout=400)[0].decode()
    assert proc.returncode == 0, log[-3000:]
    progress = json.loads(out.read_bytes("_progress/pod-0.json"))
    # Dynamic assignment (the default): the claimer's walk passes over shards indexed
    # before it started without claiming them, and a pod counts only its own work (the
    # job's shardsDone comes from the index objects). A shard run 1 wrote but did not
    # index is taken over, found written, indexed from its output and counted as
    # skipped, never captioned again: run 2 captioned exactly the rest.
    assert progress["assignment"] == "dynamic"
    assert progress["shards_done"] == SHARDS - len(indexed), progress
    assert progress["processed"] == (SHARDS - len(after_kill)) * PER_SHARD, progress
    assert progress["shards_failed"] == 0

    out_ids = _ids(f"{base}/out")
    assert sorted(out_ids) == sorted(in_ids)  # every input id exactly once
    assert len(set(out_ids)) == len(out_ids)
    ds = Dataset.open(f"{base}/out")
    assert len(ds) == len(in_ids)
    rows = [
        r
        for k in out.list("")
        if k.endswith(".parquet")
        for r in pq.read_table(io.BytesIO(out.read_bytes(k))).to_pylist()
    ]
    status = Counter(r["caption_status"] for r in rows)
    assert status["ok"] > 0, status
    assert all((r["caption"] != "") == (r["caption_status"] == "ok") for r in rows)
    assert {r["caption_model"] for r in rows} == {"tiny-random"}
    assert {r["caption_prompt_version"] for r in rows} == {"v1"}
    # Carried-through columns are intact.
    by_id: dict[str, Any] = {r["id"]: r for r in rows}
    src = Dataset.open(f"{base}/in").read_shard(0).rows
    assert src[0] is not None and by_id[src[0]["id"]]["images"] == src[0]["images"]
