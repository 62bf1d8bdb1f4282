"""The run-directory lock of `sailvl run` (sailvl/local/lock.py): one holder, a stale
lock taken over, and orphaned step processes still holding it after their parent died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sailvl.local.lock import LOCK_FILE, RunLock, RunLocked

# A `sailvl run` stand-in: takes the lock, starts a "step" in its own session that
# inherits the lock's descriptor (as the executor does), records it, then waits.
PARENT = """
import subprocess, sys, time
from pathlib import Path
from sailvl.local.lock import RunLock
lock = RunLock(Path(sys.argv[1])); lock.acquire()
step = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                        start_new_session=True, pass_fds=(lock.fd,))
lock.record("sft-knowledge", step.pid)
print(step.pid, flush=True)
time.sleep(120)
"""


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    refused = pytest.raises(RunLocked, match=f"another `sailvl run` \\(pid {os.getpid()} ")
    with RunLock(tmp_path), refused:
        RunLock(tmp_path).acquire()
    # Released: the next one gets it and finds nothing stale.
    with RunLock(tmp_path) as again:
        assert again.stale == {}
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": "h"}))
    with RunLock(tmp_path) as lock:
        assert lock.stale["pid"] == dead.pid
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_orphaned_step_keeps_the_directory_locked(tmp_path: Path) -> None:
    """`sailvl run` SIGKILLed mid-step: its step (own session) still holds the lock, and
    the refusal says how to stop it; once it is gone, the lock is free."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    step = int(parent.stdout.readline())
    try:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        with pytest.raises(RunLocked) as err:
            RunLock(tmp_path).acquire()
        assert f"`sailvl run` pid {parent.pid} is gone" in str(err.value)
        assert f"kill -TERM -- -{step}" in str(err.value)
    finally:
        os.killpg(step, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with RunLock(tmp_path) as lock:
                assert lock.stale["pid"] == parent.pid
            break
        except RunLocked:
            assert time.monotonic() < deadline, "lock still held after the step died"
            time.sleep(0.1)
