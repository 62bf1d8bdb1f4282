"""A training stage on SeaweedFS through injected faults, cut by them, then resumed
(issue 17 section 3: a training stage's streaming reader across a resume, and its
checkpoint save and load).

`sailvl train` (two DeepSpeed CPU workers over gloo, ZeRO-2, the tiny model) reads its
data from and writes its checkpoints to SeaweedFS, every request through
`tests.fixtures.faultproxy` at 5 %. Once a checkpoint is committed and training has
gone past it, the proxy turns to 100 %: the stage must stop (exit non-zero) within a
bounded time, say which object failed, and leave `latest` on a committed unit. The
rerun at 5 % resumes from that checkpoint and finishes the budget; over the whole
stage (the last run's row per step and rank) every sample id is consumed exactly once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.s3server import S3Server, assert_server_is_expected
from tests.integration.test_s3_faults import READ_TIMEOUT_S, upstream_objects
from tests.integration.test_train_resume import assert_replayed_exactly_once, read_log
from tests.integration.test_train_stages import free_port, train_env, write_job

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
STEPS, PER_STEP, INTERVAL, CUT_AT = 24, 2, 8, 10


def test_stage_cut_by_100pct_faults_then_resumed_at_5pct(
    s3_env: str, s3_server: S3Server, tmp_path: Path
) -> None:
    from sailvl.data.dataset import WriterConfig
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    assert_server_is_expected(s3_server)
    data, out = f"s3://{s3_env}/data", f"s3://{s3_env}/out"
    write_synthetic(  # straight to SeaweedFS
        data, 128, SyntheticConfig(seed=0, min_size=48, max_size=96),
        WriterConfig(max_samples_per_shard=16),
    )  # fmt: skip
    job = write_job(
        tmp_path / "job.yaml", name="faults", preset="sft-knowledge", data=data, output=out,
        zero=2, budget={"samples": STEPS * PER_STEP}, global_batch=PER_STEP,
        interval=INTERVAL, lr=3e-3, max_tokens=1024, maxTiles=1,
    )  # fmt: skip
    ids_dir = tmp_path / "ids"
    cmd = [sys.executable, "-m", "sailvl.cli", "train", "--config", str(job)]
    with fault_proxy(s3_server.endpoint, rate=0.05, seed=16, stall_s=3.0) as proxy:
        env = {
            **train_env(tmp_path, free_port()),
            "SAILVL_TRAIN_ID_LOG": str(ids_dir),
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "S3_ENDPOINT_URL": proxy.endpoint,
            "SAILVL_S3_READ_TIMEOUT": str(READ_TIMEOUT_S),
            "SAILVL_S3_CONNECT_TIMEOUT": str(READ_TIMEOUT_S),
        }
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)  # fmt: skip
        deadline = time.monotonic() + 600
        while not [r for r in read_log(ids_dir) if r["step"] >= CUT_AT]:
            assert first.poll() is None, first.stderr.read()[-4000:] if first.stderr else ""
            assert time.monotonic() < deadline, "no training progress in time"
            time.sleep(0.2)
        proxy.rate = 1.0
        t_cut = time.monotonic()
        _, err = first.communicate(timeout=300)
        took = time.monotonic() - t_cut
        injected_before = dict(proxy.injected)
        print(f"\ncut at step >= {CUT_AT}: exit {first.returncode} {took:.1f} s later")
        assert first.returncode != 0, err[-4000:]
        assert took < 240, took
        assert re.search(rf"s3://{s3_env}/\S+: gave up after \d+ attempts", err), err[-4000:]
        killed = read_log(ids_dir)
        last_killed_step = max(r["step"] for r in killed)
        assert last_killed_step < STEPS

        proxy.rate = 0.05
        env["MASTER_PORT"] = str(free_port())
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-4000:]
        print(f"faults: before the cut {injected_before}, in all {dict(proxy.injected)}")

    rows = read_log(ids_dir)
    first_pids = {r["pid"] for r in killed}
    resumed = [r for r in rows if r["pid"] not in first_pids]
    # Resumed from a committed checkpoint at or before the cut, not from scratch.
    start = min(r["step"] for r in resumed) - 1
    assert start % INTERVAL == 0 and INTERVAL <= start <= last_killed_step, start
    assert max(r["step"] for r in resumed) == STEPS
    assert_replayed_exactly_once(killed, rows, STEPS, PER_STEP)
    got = upstream_objects(s3_server, s3_env)
    latest = got["out/latest"].decode()
    assert f"out/{latest}/_COMMITTED" in got and "out/final/_COMMITTED" in got
    for unit in {k.split("/")[1] for k in got if k.startswith("out/step-")}:
        marker = got.get(f"out/{unit}/_COMMITTED")
        if marker is None:
            continue  # a unit cut before its marker: ignored by resume
        files = json.loads(marker)["files"]
        stored = {k[len(f"out/{unit}/") :]: len(v) for k, v in got.items()
                  if k.startswith(f"out/{unit}/") and not k.endswith("_COMMITTED")}  # fmt: skip
        assert stored == files, unit  # each committed unit: exactly its files, whole
