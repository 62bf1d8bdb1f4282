"""Run a Curriculum's steps as local subprocesses, one at a time.

The loop is the operator's: ``decide`` -> build the child's spec with ``child_spec`` ->
write its job config with ``job_config`` -> run ``sailvl <cmd> --config`` -> record the
outcome. Local differences, and only these: each child is a subprocess instead of a
Job; a TrainStage runs on one node with ``devicesPerNode`` CPU processes; the status
sink is a file the executor polls for progress bars and loss history.

Ctrl-C, ``kill`` (SIGTERM) and a closed terminal (SIGHUP) all stop the running child
the same way: ``sailvl run`` turns each into a KeyboardInterrupt (sailvl/local/main.py),
and the loop below sends SIGTERM to the child's process group (torchrun and its workers
too: the child runs in a session of its own, so nothing else reaches them), then
SIGKILL. The state file is left as it was before that step (writes are atomic). The run
directory's lock (sailvl/local/lock.py) is handed to each child, so orphans of a
``sailvl run`` killed with SIGKILL still hold it and a rerun refuses to start beside them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sailvl.api import constants as c
from sailvl.api.compose import Step, child_name, eval_spec, step_output, steps
from sailvl.api.curriculum import CurriculumSpec
from sailvl.api.flow import child_spec, decide
from sailvl.api.jobconfig import dump_job_config, job_config
from sailvl.runtime.report import read_file_status

from .lock import RunLock
from .state import RunState, StepRecord

BASELINE = "baseline-eval"
COMMANDS = {"CaptionJob": "caption", "TrainStage": "train", "EvalSuite": "eval"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StepRun:
    """What the display needs while a step runs."""

    step: Step
    status: dict[str, Any]
    elapsed: float


class LocalExecutor:
    def __init__(
        self,
        name: str,
        spec: CurriculumSpec,
        workdir: Path,
        display: Any = None,
        lock: RunLock | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name, self.spec, self.workdir = name, spec, workdir
        # Defaults for the children's environment; a variable set in this process wins
        # (e.g. OMP_NUM_THREADS from an Experiment running trials side by side).
        self.env_defaults = dict(env or {})
        self.state = RunState(workdir / "state.json")
        self.display = display
        self.lock = lock
        self.poll = 0.5
        self.stopping = False  # set by stop(), from another thread

    def stop(self) -> None:
        """Ask the step running in a worker thread to stop (the main thread's Ctrl-C
        while an Experiment runs several executors, one per trial): the worker stops its
        child's process group within one poll and raises KeyboardInterrupt instead of
        recording the step, so a rerun starts it again, as after an interrupted
        curriculum step. Wait for the worker to return."""
        self.stopping = True

    def run(self) -> int:
        """Run until the curriculum succeeds (0) or fails (1)."""
        while True:
            decision = decide(self.spec, self.state.children())
            if decision.action == "create" and decision.step is not None:
                self.run_step(decision.step)
                continue
            self.state.extra["result"] = {
                "action": decision.action,
                "reason": decision.reason,
                "message": decision.message,
            }
            self.state.save()
            return 0 if decision.action == "succeed" else 1

    def spec_for(self, step: Step) -> Any:
        spec = child_spec(self.spec, step, self.state.children())
        if step.kind == "TrainStage":
            spec = spec.model_copy(update={"nodes": 1})
        return spec

    def baseline(self) -> StepRecord | None:
        """Evaluate the initial checkpoint on the final eval's benchmarks (local only):
        the report compares the trained model against it."""
        final = next((s for s in steps(self.spec) if s.name == "final-eval"), None)
        if final is None or self.spec.model.init is None:
            return None
        done = self.state.steps.get(BASELINE)
        if done is not None and done.phase == c.SUCCEEDED:
            return done
        spec = eval_spec(self.spec, final, 0).model_copy(
            update={"model": self.spec.model.init, "output": step_output(self.spec, BASELINE)}
        )
        return self.run_step(Step(BASELINE, "EvalSuite", None), spec)

    def run_step(self, step: Step, spec: Any = None) -> StepRecord:
        if self.stopping:
            raise KeyboardInterrupt(step.name)
        folder = self.workdir / "local" / step.name
        folder.mkdir(parents=True, exist_ok=True)
        spec = spec if spec is not None else self.spec_for(step)
        cfg = job_config(step.kind, child_name(self.name, step.name), "local", spec)
        (folder / "job.yaml").write_text(dump_job_config(cfg))
        status_file = folder / "status.json"
        status_file.unlink(missing_ok=True)
        rec = self.state.steps.get(step.name) or StepRecord()
        rec.phase, rec.start_time, rec.message = c.RUNNING, _now(), None
        self.state.steps[step.name] = rec
        # A TrainStage gets the operator's group restarts: a failed run (a worker killed,
        # a node lost) is started again, up to maxRestarts times, and resumes from its
        # newest checkpoint. Exit code 2 is a configuration error: no restart can help.
        attempts = (
            1 + int(getattr(spec, "max_restarts", 0) or 0) if step.kind == "TrainStage" else 1
        )
        rc, seconds = 0, 0.0
        for attempt in range(attempts):
            rc, spent = self._run_child(step, folder, status_file, cfg["spec"], rec, attempt)
            seconds += spent
            if self.stopping:
                raise KeyboardInterrupt(step.name)
            if rc in (0, 2) or attempt + 1 == attempts:
                break
            rec.restarts += 1  # over the stage's life, reruns included
            self.state.save()
        status = read_file_status(status_file)
        rec.status, rec.seconds = status, round(seconds, 1)
        rec.tokens = status.get("tokens")
        rec.scores = {k: float(v) for k, v in (status.get("scores") or {}).items()}
        rec.completion_time = _now()
        rec.phase = c.SUCCEEDED if rc == 0 else c.FAILED
        if rc != 0:
            tail = _tail(folder / "log.txt")
            rec.message = (
                status.get("message") or f"exit code {rc}; log: {folder / 'log.txt'}\n{tail}"
            )
        self.state.save()
        if self.display is not None:
            self.display.finish(step.name, rec.phase)
        return rec

    def _env(
        self, step: Step, spec: dict[str, Any], status_file: Path, attempt: int = 0
    ) -> dict[str, str]:
        env = {**self.env_defaults, **os.environ}
        env.update(
            {
                "SAILVL_STATUS_SINK": f"file:{status_file}",
                "DS_ACCELERATOR": env.get("DS_ACCELERATOR", "cpu"),
                "TORCH_DEVICE_BACKEND_AUTOLOAD": "0",
                "JOB_COMPLETION_INDEX": "0",
                "SAILVL_SHARD_INDEX": "0",
                "SAILVL_SHARD_COUNT": "1",
                "SAILVL_METRICS_PORT": "0",
            }
        )
        if step.kind == "TrainStage":
            env.update(
                {
                    c.ENV_MASTER_ADDR: "127.0.0.1",
                    c.ENV_MASTER_PORT: str(free_port()),
                    c.ENV_NNODES: "1",
                    c.ENV_NODE_RANK: "0",
                    c.ENV_NPROC_PER_NODE: str(spec.get("devicesPerNode", 1)),
                    c.ENV_RESTART_ATTEMPT: str(attempt),
                }
            )
        return env

    def _run_child(
        self,
        step: Step,
        folder: Path,
        status_file: Path,
        spec: dict[str, Any],
        rec: StepRecord,
        attempt: int = 0,
    ) -> tuple[int, float]:
        cmd = [
            sys.executable,
            "-m",
            "sailvl.cli",
            COMMANDS[step.kind],
            "--config",
            str(folder / "job.yaml"),
        ]
        start = time.monotonic()
        lock_fd = self.lock.fd if self.lock is not None else None
        with open(folder / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(step, spec, status_file, attempt),
                start_new_session=True,
                pass_fds=() if lock_fd is None else (lock_fd,),
            )
            try:
                if self.lock is not None:
                    self.lock.record(step.name, proc.pid)  # its session: pgid == pid
                while proc.poll() is None:
                    if self.stopping:
                        _stop(proc)
                        proc.wait()
                        break
                    time.sleep(self.poll)
                    self._observe(step, status_file, rec, time.monotonic() - start)
            except KeyboardInterrupt:
                _stop(proc)
                raise
            finally:
                if self.lock is not None:
                    self.lock.record()
        self._observe(step, status_file, rec, time.monotonic() - start)
        return int(proc.returncode), time.monotonic() - start

    def _observe(self, step: Step, status_file: Path, rec: StepRecord, elapsed: float) -> None:
        status = read_file_status(status_file)
        if (
            step.kind == "TrainStage"
            and status.get("loss") is not None
            and status.get("step") is not None
        ):
            point = [float(status["step"]), float(status["loss"])]
            if not rec.losses or rec.losses[-1][0] != point[0]:
                rec.losses.append(point)
        if self.display is not None:
            self.display.update(StepRun(step, status, elapsed))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group (torchrun's workers too), then SIGKILL.

    Further Ctrl-C / SIGTERM / SIGHUP are held back meanwhile (they stay pending and
    arrive once the group is gone), so a second signal cannot cut the stop short."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; SIGKILL whatever of its group outlived it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
