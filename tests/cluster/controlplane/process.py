"""Child processes of the test control plane, started and stopped by PID.

Each component runs as a plain process in its own session (``start_new_session``), so a
Ctrl-C in the terminal reaches only the harness, which then stops the components in
reverse start order: SIGTERM to the recorded PID, a grace period, then SIGKILL to that
PID only. stdout and stderr go to ``<workdir>/logs/<name>.log``; when a component dies
or never gets ready, the error carries the tail of that log.

Readiness is probed over HTTP(S) on loopback only.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class ComponentError(RuntimeError):
    """A component exited or did not become ready in time."""


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (the OS picks them; sockets held together)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_ok(url: str, context: ssl.SSLContext | None = None, expect: str | None = None) -> bool:
    """True when GET url answers 200 (and its body contains expect, if given)."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            body = resp.read().decode(errors="replace")
            return resp.status == 200 and (expect is None or expect in body)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def insecure_context() -> ssl.SSLContext:
    """TLS without verification: for /healthz of components with self-signed certs."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(kw_only=True)
class Component:
    """One control-plane process."""

    name: str  # short name, also the log file name
    argv: list[str]  # full command line, binary first
    log_dir: Path  # folder for <name>.log
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        if self.proc is None:
            raise ComponentError(f"{self.name} was never started")
        code = self.proc.poll()
        if code is not None:
            raise ComponentError(
                f"{self.name} exited with code {code}; log {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Poll probe until it returns True; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if probe():
                return
            if time.monotonic() > deadline:
                raise ComponentError(
                    f"{self.name} not {what} after {timeout:.0f} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the recorded PID, wait up to grace seconds, then SIGKILL it."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
