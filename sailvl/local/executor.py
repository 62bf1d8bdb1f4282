"""Run a Curriculum's steps as local subprocesses, one at a time.

The loop is the operator's: ``decide`` -> build the child's spec with ``child_spec`` ->
write its job config with ``job_config`` -> run ``sailvl <cmd> --config`` -> record the
outcome. Local differences, and only these: each child is a subprocess instead of a
Job; a TrainStage runs on one node with ``devicesPerNode`` CPU processes; the status
sink is a file the executor polls for progress bars and loss history.

Ctrl-C stops the running child (SIGTERM to its process group, then SIGKILL), leaves
the state file as it was before that step (writes are atomic) and exits 130.
"""

from __future__ import annotations

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
    def __init__(self, name: str, spec: CurriculumSpec, workdir: Path, display: Any = None) -> None:
        self.name, self.spec, self.workdir = name, spec, workdir
        self.state = RunState(workdir / "state.json")
        self.display = display
        self.poll = 0.5

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
        rc, seconds = self._run_child(step, folder, status_file, cfg["spec"], rec)
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

    def _env(self, step: Step, spec: dict[str, Any], status_file: Path) -> dict[str, str]:
        env = dict(os.environ)
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
                    c.ENV_RESTART_ATTEMPT: "0",
                }
            )
        return env

    def _run_child(
        self, step: Step, folder: Path, status_file: Path, spec: dict[str, Any], rec: StepRecord
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
        with open(folder / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(step, spec, status_file),
                start_new_session=True,
            )
            try:
                while proc.poll() is None:
                    time.sleep(self.poll)
                    self._observe(step, status_file, rec, time.monotonic() - start)
            except KeyboardInterrupt:
                _stop(proc)
                raise
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
    """SIGTERM the child's process group (torchrun's workers too), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
