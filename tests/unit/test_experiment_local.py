"""The local Experiment runner's scheduling: parallelism, resume, interrupt, report.

The trials' jobs are replaced by an in-process stand-in for ``_run_child`` (it writes
the status file a job would, with scores chosen by the test, and sleeps a little), so
these tests check the runner's orchestration in seconds. Real training and evaluation
run in the ground-truth tests (tests/e2e) and ``sailvl run examples/demo/experiment.yaml``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sailvl.api import parse_resource
from sailvl.experiment.local import load_result, run_experiment, trial_threads
from sailvl.experiment.report import write_report
from sailvl.local.executor import LocalExecutor

from .experiment_builders import experiment

QUALITY = {"clean": 60.0, "c30": 45.0, "c70": 20.0}


class FakeJobs:
    """Stands in for the job subprocesses; records concurrency and what ran."""

    def __init__(self, fail: set[str] = frozenset(), interrupt_after: int | None = None) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.ran: list[str] = []
        self.fail = fail
        self.interrupt_after = interrupt_after

    def __call__(
        self,
        ex: LocalExecutor,
        step: Any,
        folder: Path,
        status_file: Path,
        spec: Any,
        rec: Any,
        attempt: int = 0,
    ) -> tuple[int, float]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.ran.append(f"{ex.name}/{step.name}")
            n = len(self.ran)
        try:
            if self.interrupt_after is not None and n > self.interrupt_after:
                while not ex.stopping:  # "runs" until the runner stops it
                    time.sleep(0.01)
                return -15, 0.1
            time.sleep(0.05)
            status: dict[str, Any] = {"tokens": 100}
            if step.kind == "EvalSuite":
                trial = ex.name.split("-", 1)[1]
                cand, n_ = trial.rsplit("-n", 1)
                v = QUALITY[cand] + (1 if n_ == "64" else 0)
                status["scores"] = {"synth-ocr": v, "synth-mcq": v, "synth-yesno": v}
            status_file.write_text(json.dumps(status))
            return (1 if ex.name.split("-", 1)[1] in self.fail else 0), 0.05
        finally:
            with self.lock:
                self.running -= 1


def _use(monkeypatch: pytest.MonkeyPatch, jobs: FakeJobs) -> None:
    monkeypatch.setattr(LocalExecutor, "_run_child", lambda ex, *a, **k: jobs(ex, *a, **k))


def _spec(**over: Any) -> Any:
    return parse_resource(experiment(**over))[2]


def test_trials_run_under_the_parallelism_limit_and_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = FakeJobs(fail={"c30-n64"})
    _use(monkeypatch, jobs)
    result = run_experiment(_spec(parallelism=2), tmp_path, "exp")
    assert jobs.most == 2
    assert len(jobs.ran) == len(set(jobs.ran)) == 11  # c30-n64's eval never runs
    assert "exp-clean-n32/train" in jobs.ran
    assert result.phase == "Succeeded" and result.decision["ranking"] == ["clean", "c70"]
    failed = next(r for r in result.rows if r["name"] == "c30-n64")
    assert failed["phase"] == "Failed" and "exit code 1" in failed["message"]
    assert load_result(tmp_path) == result
    summary = write_report(tmp_path).read_text()
    assert "| clean-n64 | candidate clean, samples 64 | Succeeded |" in summary
    assert (tmp_path / "report" / "quick_quality.png").stat().st_size > 0


def test_trials_share_the_cores_unless_the_user_set_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each trial child gets OMP_NUM_THREADS = cores // parallelism (torch would start
    one thread per core in each of the parallel trials); a value the user set wins."""
    assert [trial_threads(p, cores=2) for p in (1, 2, 3)] == [2, 1, 1]
    assert trial_threads(2, cores=16) == 8
    seen: dict[str, str | None] = {}

    def child(ex: LocalExecutor, step: Any, folder: Path, status_file: Path, spec: Any,
              rec: Any, attempt: int = 0) -> tuple[int, float]:  # fmt: skip
        seen[f"{ex.name}/{step.name}"] = ex._env(step, {}, status_file).get("OMP_NUM_THREADS")
        return FakeJobs()(ex, step, folder, status_file, spec, rec, attempt)

    monkeypatch.setattr(LocalExecutor, "_run_child", child)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    run_experiment(_spec(parallelism=2), tmp_path / "a", "exp")
    assert seen and set(seen.values()) == {"1"}
    seen.clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    run_experiment(_spec(parallelism=2), tmp_path / "b", "exp")
    assert seen and set(seen.values()) == {"3"}


def test_a_rerun_resumes_and_runs_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after 3 children: those that finished are kept, the interrupted ones
    are not recorded, and a rerun runs exactly the rest."""
    first = FakeJobs(interrupt_after=3)
    _use(monkeypatch, first)

    def stop_soon() -> None:  # Ctrl-C (a real SIGINT) once two children hang
        while len(first.ran) < 5:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler, whatever pytest inherited: a shell starts a background
    # job (`pytest ... &`) with SIGINT ignored, and then this test hung for good.
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=stop_soon, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            run_experiment(_spec(parallelism=2), tmp_path, "exp")
    finally:
        signal.signal(signal.SIGINT, saved)
    finished = first.ran[:3]
    second = FakeJobs()
    _use(monkeypatch, second)
    result = run_experiment(_spec(parallelism=2), tmp_path, "exp")
    assert not set(second.ran) & set(finished)
    assert sorted(second.ran + finished) == sorted(set(second.ran + finished))
    assert len(second.ran + finished) == 12
    assert result.phase == "Succeeded" and result.best == "clean"


def test_sailvl_run_refuses_an_invalid_experiment_naming_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from sailvl.cli import main as cli

    obj = experiment()
    obj["spec"]["strategy"]["quickQuality"]["samples"] = [4]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    assert cli(["run", str(path), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "spec.strategy.quickQuality.samples[0]: 4 is smaller than one step" in err
    assert "line " in err
    assert not (tmp_path / "runs" / "exp" / "trials").exists()  # nothing started
