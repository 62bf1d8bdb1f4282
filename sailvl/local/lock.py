"""One ``sailvl run`` per run directory: an advisory lock on ``<workdir>/.lock``.

Two runs on one directory would run two trainers on the same stage, both writing its
checkpoints and the state file. The lock is ``flock(LOCK_EX | LOCK_NB)`` on an open
descriptor of the lock file, not the file's existence:

- the kernel drops it when the last descriptor closes, so a run killed with SIGKILL (or
  a machine reboot) leaves no lock behind: its file, still naming the dead process, is a
  *stale* lock that the next run simply takes over (and says so);
- the executor hands the descriptor to each step's process (``pass_fds``), so if
  ``sailvl run`` itself dies while a step runs, the step's processes still hold the
  lock and a rerun refuses, instead of starting a second trainer beside the orphans.
  The file names the step's process group, and the refusal says how to stop it.

The file is never deleted (a process that opened the old inode would then lock a
different file than a newcomer): releasing truncates it and unlocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"


class RunLocked(RuntimeError):
    """Another live ``sailvl run`` (or the steps it left running) holds the directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def refusal(workdir: Path, holder: dict[str, Any]) -> str:
    """The message of a refused start, from what the holder wrote into the lock file."""
    pid, group = holder.get("pid"), holder.get("step_pgid")
    head = f"run directory {workdir} is in use"
    if isinstance(pid, int) and _alive(pid):
        return (
            f"{head} by another `sailvl run` (pid {pid} on {holder.get('host', '?')}, "
            f"since {holder.get('since', '?')}): wait for it or stop it "
            f"(kill -INT {pid}), then rerun to continue"
        )
    if isinstance(group, int):
        return (
            f"{head}: `sailvl run` pid {pid} is gone but its step "
            f"{holder.get('step', '?')!r} still runs (process group {group}): "
            f"stop it with `kill -TERM -- -{group}`, then rerun to continue"
        )
    return f"{head} by a process that holds {workdir / LOCK_FILE} (written: {holder or 'empty'})"


class RunLock:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / LOCK_FILE
        self.fd: int | None = None
        self.stale: dict[str, Any] = {}  # what a dead holder had written, if taken over

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLocked` with a message naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunLocked(refusal(self.workdir, holder)) from None
        self.fd = fd
        self.stale = _read(fd)
        self.record()

    def record(self, step: str | None = None, step_pgid: int | None = None) -> None:
        """Rewrite the holder's note: this process, and the step it is running now."""
        if self.fd is None:
            return
        note: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if step is not None:
            note.update(step=step, step_pgid=step_pgid)
        data = json.dumps(note).encode() + b"\n"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        note = json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}
