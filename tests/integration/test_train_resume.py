"""Kill a worker with SIGKILL mid-stage, relaunch, and check the stage is exact.

One stage (sft-knowledge: everything trains, ZeRO-2, 2 CPU workers) with a sample
budget of 60 steps x 2 samples and a checkpoint every 10 steps. Each worker appends
the sample ids (and the step loss) of every step to a log. Once step 25 is logged,
rank 1 gets SIGKILL; torchrun tears the group down and `sailvl train` exits non-zero.
The relaunch must resume from `latest` (step 20), replay steps 61.. with exactly the
same samples, stop at exactly 150 steps, and over the whole stage every sample id is
consumed exactly once. The same log shows the loss falling over the stage.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_train_stages import (  # noqa: F401 (fixture)
    free_port,
    synthetic_data,
    train_env,
    write_job,
)

pytestmark = pytest.mark.timeout(900)
STEPS, PER_STEP, INTERVAL, KILL_AT = 60, 2, 10, 25


def read_log(folder: Path) -> list[dict]:
    rows = []
    for f in sorted(folder.glob("rank-*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


def assert_replayed_exactly_once(
    killed: list[dict], rows: list[dict], steps: int, per_step: int
) -> None:
    """The steps replayed after a resume saw exactly the samples the interrupted run saw
    (`killed`: its rows), and over the stage (the last writer per step and rank, in
    `rows`) every step 1..`steps` ran and every sample id was consumed exactly once."""
    first_pids = {r["pid"] for r in killed}
    before = {(r["step"], r["rank"]): r["ids"] for r in killed}
    for r in rows:
        if r["pid"] not in first_pids and (r["step"], r["rank"]) in before:
            assert r["ids"] == before[(r["step"], r["rank"])], r["step"]
    final = {(r["step"], r["rank"]): r["ids"] for r in rows}
    assert sorted({s for s, _ in final}) == list(range(1, steps + 1))
    ids = [i for v in final.values() for i in v]
    assert len(ids) == steps * per_step == len(set(ids))


def test_sigkill_then_resume_consumes_every_sample_once(
    tmp_path: Path,
    synthetic_data: str,  # noqa: F811 (the imported fixture)
) -> None:
    out = f"file://{tmp_path}/out"
    job = write_job(
        tmp_path / "job.yaml", name="resume", preset="sft-knowledge", data=synthetic_data,
        output=out, zero=2, budget={"samples": STEPS * PER_STEP}, global_batch=PER_STEP,
        interval=INTERVAL, lr=3e-3, max_tokens=1024, maxTiles=1,
    )  # fmt: skip
    ids_dir = tmp_path / "ids"
    env = {**train_env(tmp_path, free_port()), "SAILVL_TRAIN_ID_LOG": str(ids_dir)}
    cmd = [sys.executable, "-m", "sailvl.cli", "train", "--config", str(job)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    victim = None
    while time.monotonic() < deadline and first.poll() is None:
        rows = [r for r in read_log(ids_dir) if r["rank"] == 1 and r["step"] >= KILL_AT]
        if rows:
            victim = rows[0]["pid"]
            os.kill(victim, signal.SIGKILL)
            break
        time.sleep(0.2)
    assert victim is not None, "the first run ended or stalled before the kill step"
    _, err = first.communicate(timeout=120)
    assert first.returncode != 0
    killed = read_log(ids_dir)
    last_killed_step = max(r["step"] for r in killed)
    assert last_killed_step < STEPS

    env["MASTER_PORT"] = str(free_port())
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-4000:]

    rows = read_log(ids_dir)
    first_pids = {r["pid"] for r in killed}
    resumed = [r for r in rows if r["pid"] not in first_pids]
    # Resumed from the newest committed checkpoint before the kill, not from scratch.
    resume_from = (last_killed_step // INTERVAL) * INTERVAL
    assert min(r["step"] for r in resumed) == resume_from + 1
    assert max(r["step"] for r in resumed) == STEPS  # exactly the budget
    assert_replayed_exactly_once(killed, rows, STEPS, PER_STEP)
    # The loss falls clearly: from chance level (ln of the 320-token vocabulary) at
    # step 1 to well below it over the last 10 steps.
    loss = {r["step"]: r["loss"] for r in rows if r["rank"] == 0}
    assert abs(loss[1] - math.log(320)) < 0.5, loss[1]
    tail = sum(loss[s] for s in range(STEPS - 9, STEPS + 1)) / 10
    assert tail < 0.65 * loss[1], (loss[1], tail)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["step"] == STEPS and status["samples"] == STEPS * PER_STEP
    assert status["finalCheckpoint"] == f"{out}/final"
    assert status["lastCheckpoint"] == f"{out}/step-{50:08d}"  # newest before the end
