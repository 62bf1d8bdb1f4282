"""`sailvl run` interrupted for real: a gate that fails, SIGTERM / SIGHUP mid-stage, a
second run on the same directory, and a stage interrupted twice (a worker SIGKILLed,
then Ctrl-C) that still consumes every sample exactly once.

Each run writes its synthetic data, benchmarks and tiny model once (the
`synthetic-small` set-up) and trains with two CPU processes over gloo. Workers log the
sample ids of every step (SAILVL_TRAIN_ID_LOG, sailvl/train/loop.py): that log, not the
executor's own bookkeeping, is what the exactly-once checks read.

How each test was seen to fail on a broken build: the tree of commit eda9743 (before
these changes; `git archive eda9743 | tar -x -C /tmp/oldtree`, plus the new lock.py so
the test module imports) was put first on PYTHONPATH, so `sailvl run` ran the old
executor; each test's docstring says what failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.local.lock import LOCK_FILE

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "examples" / "demo" / "curriculum.yaml"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def stage(name: str, steps: int, **extra: Any) -> dict[str, Any]:
    """One of the demo's stages on its pretraining data, cut to `steps` steps of 4."""
    doc = yaml.safe_load(DEMO.read_text())
    st = next(s for s in doc["spec"]["stages"] if s["name"] == name)
    st.pop("eval", None)
    st.pop("gate", None)
    st.update(data=[{"uri": "${RUN}/data/pretrain"}], budget={"steps": steps}, globalBatch=4)
    st.update(extra)
    return dict(st)


def curriculum(name: str, stages: list[dict[str, Any]], **defaults: Any) -> dict[str, Any]:
    """The demo curriculum without caption step or final eval (so no baseline eval)."""
    doc = yaml.safe_load(DEMO.read_text())
    doc["metadata"] = {"name": name, "annotations": {"sailvl.io/local-setup": "synthetic-small"}}
    spec = doc["spec"]
    spec["defaults"].update(defaults)
    spec.pop("caption")
    spec.pop("finalEval")
    spec["stages"] = stages
    spec["evalGeneration"] = {"maxNewTokens": 4, "batchSize": 16}
    return dict(doc)


def write(tmp: Path, doc: dict[str, Any]) -> Path:
    path = tmp / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start(path: Path, tmp: Path, ids: Path, tag: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "SAILVL_TRAIN_ID_LOG": str(ids)}
    out = open(tmp / f"{tag}.out", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "sailvl.cli", "run", str(path), "--runs", str(tmp / "runs")],
        cwd=tmp,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )


def output(tmp: Path, tag: str) -> str:
    return (tmp / f"{tag}.out").read_text(errors="replace")


def read_log(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(folder.glob("rank-*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


def wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[str], limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        assert proc.poll() is None, f"`sailvl run` ended (rc {proc.returncode}) before {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (orphans' zombies may linger here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@contextlib.contextmanager
def reaped(pids: set[int]) -> Iterator[set[int]]:
    """Whatever the test leaves running (a failed check) is SIGKILLed at the end."""
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def test_a_gate_that_fails_stops_the_run_with_its_message(tmp_path: Path) -> None:
    """synth-ocr >= 50 after 2 steps from a random model cannot pass (the untrained
    model scores 0.0): the run exits 1 after the gated eval, the next stage never
    starts, and the gate's message names metric, score and threshold.
    Broken build checked: with the old e2e gate (threshold 0.0) the run exits 0 and
    this test fails at the exit-code assertion."""
    first = stage("pretrain-alignment", 2)
    first["eval"] = {"benchmarks": [{"name": "synth-ocr"}]}
    first["gate"] = {"metric": "synth-ocr", "threshold": 50.0}
    path = write(tmp_path, curriculum("gate", [first, stage("sft-knowledge", 2)]))
    proc = start(path, tmp_path, tmp_path / "ids", "run")
    assert proc.wait(timeout=900) == 1, output(tmp_path, "run")[-3000:]
    state = json.loads((tmp_path / "runs" / "gate" / "state.json").read_text())
    assert set(state["steps"]) == {"pretrain-alignment", "pretrain-alignment-eval"}
    assert state["steps"]["pretrain-alignment-eval"]["phase"] == "Succeeded"
    score = state["steps"]["pretrain-alignment-eval"]["scores"]["synth-ocr"]
    assert score < 50.0
    result = state["extra"]["result"]
    assert result["reason"] == "GateFailed", result
    expected = f"gate of step pretrain-alignment-eval: synth-ocr = {score:.4g} is below the"
    assert expected in result["message"], result["message"]
    assert expected in output(tmp_path, "run")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_term_and_hup_stop_the_training_processes(tmp_path: Path, sig: signal.Signals) -> None:
    """`kill` / a closed terminal mid-stage: `sailvl run` exits 128 + signal and no
    process of the stage is left. While it trains, a second `sailvl run` on the same
    directory refuses (exit 3) naming the first one's pid.
    Broken build checked (the old executor, SIGTERM, same steps by a script): `sailvl
    run` died at once (rc -15), both training workers were still alive 5 s later, and
    the second `sailvl run` trained beside them (30 steps in 20 s) instead of refusing.
    SIGHUP's default action is the same termination (not rerun on the old build)."""
    path = write(tmp_path, curriculum("sig", [stage("sft-knowledge", 200)]))
    ids = tmp_path / "ids"
    proc = start(path, tmp_path, ids, "run")
    with reaped(set()) as leftovers:
        rows = wait_for("training steps", lambda: read_log(ids), proc, 600)
        workers = {r["pid"] for r in rows}
        leftovers |= workers
        lock = tmp_path / "runs" / "sig" / LOCK_FILE
        note = json.loads(lock.read_text())
        assert note["pid"] == proc.pid and note["step"] == "sft-knowledge", note
        leftovers.add(note["step_pgid"])
        if sig == signal.SIGTERM:
            second = start(path, tmp_path, tmp_path / "ids-2", "second")
            assert second.wait(timeout=120) == 3, output(tmp_path, "second")[-2000:]
            said = output(tmp_path, "second")
            assert f"is in use by another `sailvl run` (pid {proc.pid}" in said, said
            assert not (tmp_path / "ids-2").exists()  # it trained nothing
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=120) == 128 + sig, output(tmp_path, "run")[-2000:]
        assert "interrupted (" in output(tmp_path, "run")
        stragglers = {p for p in workers | {note["step_pgid"]} if alive(p)}
        assert not stragglers, f"left running after {sig.name}: {stragglers}"
    assert lock.read_text() == ""  # released: a rerun continues the stage


STEPS, INTERVAL = 20, 5


def test_worker_sigkill_then_ctrl_c_then_rerun_consumes_every_sample_once(
    tmp_path: Path,
) -> None:
    """One stage of 20 steps x 4 samples (96 in the data: no epoch wraps), checkpoints
    every 5 steps, maxRestarts 1. Attempt 1: rank 1 is SIGKILLed once step 8 is
    logged; the executor restarts the stage (attempt 2), which resumes from its newest
    checkpoint; once attempt 2 logged step 13, `sailvl run` gets SIGINT (exit 130).
    The rerun finishes. Over all three runs, each step's last-logged ids are every
    step 1..20 once, no sample id twice, and every replayed step saw the same ids.
    Broken build checked: on the old executor (no local restarts) the SIGKILL failed
    the stage for good and this test failed with "`sailvl run` ended (rc 1) before
    step 13 of the restarted stage"."""
    doc = curriculum(
        "resume",
        [stage("sft-knowledge", STEPS)],
        maxRestarts=1,
        checkpoint={"intervalSteps": INTERVAL, "keep": 3},
    )
    path = write(tmp_path, doc)
    ids = tmp_path / "ids"
    proc = start(path, tmp_path, ids, "run-1")
    with reaped(set()) as leftovers:

        def at(step: int, exclude: set[int], rank: int | None = None) -> list[dict[str, Any]]:
            return [
                r
                for r in read_log(ids)
                if r["step"] >= step and r["pid"] not in exclude and rank in (None, r["rank"])
            ]

        victim = wait_for("step 8", lambda: at(8, set(), rank=1), proc, 600)[0]["pid"]
        first_pids = {r["pid"] for r in read_log(ids)}
        leftovers |= first_pids
        os.kill(victim, signal.SIGKILL)
        wait_for("step 13 of the restarted stage", lambda: at(13, first_pids), proc, 600)
        second_pids = {r["pid"] for r in read_log(ids)} - first_pids
        leftovers |= second_pids
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130, output(tmp_path, "run-1")[-3000:]
        assert not {p for p in leftovers if alive(p)}
    rerun = start(path, tmp_path, ids, "run-2")
    assert rerun.wait(timeout=900) == 0, output(tmp_path, "run-2")[-3000:]

    rows = read_log(ids)
    attempts = [
        [r for r in rows if r["pid"] in first_pids],
        [r for r in rows if r["pid"] in second_pids],
        [r for r in rows if r["pid"] not in first_pids | second_pids],
    ]
    assert all(attempts), [len(a) for a in attempts]
    # Each attempt resumed from the newest checkpoint before the previous one stopped.
    for prev, nxt in zip(attempts, attempts[1:], strict=False):
        last = max(r["step"] for r in prev)
        assert min(r["step"] for r in nxt) == (last // INTERVAL) * INTERVAL + 1, (last, nxt[0])
    assert max(r["step"] for r in attempts[-1]) == STEPS
    # Replayed steps saw exactly the samples they saw the first time.
    seen: dict[tuple[int, int], list[str]] = {}
    for r in rows:
        key = (r["step"], r["rank"])
        assert seen.setdefault(key, r["ids"]) == r["ids"], key
    steps_done = sorted({s for s, _ in seen})
    assert steps_done == list(range(1, STEPS + 1))
    consumed = [i for v in seen.values() for i in v]
    assert len(consumed) == STEPS * 4 == len(set(consumed))
    state = json.loads((tmp_path / "runs" / "resume" / "state.json").read_text())
    rec = state["steps"]["sft-knowledge"]
    assert rec["phase"] == "Succeeded" and rec["restarts"] == 1, rec
