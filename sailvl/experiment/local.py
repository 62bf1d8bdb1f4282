"""``sailvl run experiment.yaml``: an Experiment's trials on this machine, resumable.

The loop is the operator's: :func:`sailvl.experiment.trials.decide` over what the
trials' children reported -> start the children it names -> wait for one to finish ->
decide again. Each trial has its own :class:`sailvl.local.executor.LocalExecutor`
(its folder ``<run>/trials/<trial>/``, its ``state.json``): a step runs exactly as a
curriculum step does (job config, ``sailvl train|eval --config`` as a subprocess in its
own session, restarts, the status file), in a worker thread, so up to
``parallelism`` trials run at once. The children of a trial are named
``<experiment>-<trial>-<step>`` as on a cluster.

Resuming: the trials' state files hold every finished step (Succeeded or Failed); a
rerun of the same command decides from them and starts only what is missing, and an
interrupted step (Ctrl-C, SIGTERM, SIGHUP) is run again (the jobs themselves resume:
training from ``latest``, evaluation skips answered rows). On an interrupt the worker
threads stop their children's process groups and record nothing for the interrupted
steps. ``<run>/experiment.json`` holds the status as the operator would write it (rows,
decision, conditions), rewritten after every change; ``sailvl report <run>`` draws it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sailvl.api import constants as c
from sailvl.api.compose import Step
from sailvl.api.experiment import ExperimentSpec
from sailvl.api.flow import ChildState

from .trials import Results, Start, child_spec, decide, trial_curriculum, trials

STATUS_FILE = "experiment.json"


@dataclass
class ExperimentResult:
    """What ``run_experiment`` ends with (also ``<run>/experiment.json``)."""

    name: str
    strategy: str
    phase: str
    reason: str
    message: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    best: str | None = None
    conditions: list[list[str]] = field(default_factory=list)
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.phase == c.SUCCEEDED


def load_result(run_dir: Path) -> ExperimentResult | None:
    path = Path(run_dir) / STATUS_FILE
    if not path.exists():
        return None
    return ExperimentResult(**json.loads(path.read_text()))


def _save(run_dir: Path, result: ExperimentResult) -> None:
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".experiment-")
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(result), fh, indent=1)
    os.replace(tmp, run_dir / STATUS_FILE)


def trial_threads(parallelism: int, cores: int | None = None) -> int:
    """Intra-op threads per trial process: the cores shared by the ``parallelism``
    trials that run side by side (at least 1). torch's default is one thread per core
    in every process, so two CPU trials on two cores ran four busy threads; on a shared
    machine each oversubscribed step took several times longer. It is the children's
    default only: an OMP_NUM_THREADS set for ``sailvl run`` wins."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, parallelism))


def run_experiment(
    spec: ExperimentSpec,
    run_dir: Path,
    name: str = "exp",
    *,
    lock: Any = None,
    say: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run (or resume) every trial of ``spec`` under ``run_dir``; return the decision.

    ``spec`` must be validated (``parse_resource``). Failing trials do not raise: they
    are rows with phase Failed, and the strategy decides over the others. Ctrl-C
    (KeyboardInterrupt in the calling thread) stops the running steps and re-raises.
    """
    import time

    from sailvl.local.executor import LocalExecutor

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    say = say or (lambda _msg: None)
    every = {t.name: t for t in trials(spec)}
    env = {"OMP_NUM_THREADS": str(trial_threads(spec.parallelism))}
    executors = {
        t: LocalExecutor(
            f"{name}-{t}",
            trial_curriculum(spec, trial, {}),
            run_dir / "trials" / t,
            lock=lock,
            env=env,
        )
        for t, trial in every.items()
    }
    inflight: dict[Future[Any], Start] = {}
    guard = threading.Lock()
    began = time.monotonic()

    def results() -> Results:
        out: Results = {}
        for t, ex in executors.items():
            states = dict(ex.state.children())
            out[t] = states
        for start in inflight.values():
            out.setdefault(start.trial.name, {})[start.step.name] = ChildState(phase=c.RUNNING)
        return {t: s for t, s in out.items() if s}

    def run_one(start: Start, child: Any) -> None:
        ex = executors[start.trial.name]
        rec = ex.run_step(Step(start.step.name, start.step.kind, start.step.stage_index), child)
        with guard:
            say(f"{start.trial.name}/{start.step.name}: {rec.phase} ({rec.seconds or 0:.0f} s)")

    pool = ThreadPoolExecutor(max_workers=max(1, spec.parallelism), thread_name_prefix="trial")
    try:
        while True:
            current = results()
            d = decide(spec, current)
            result = ExperimentResult(
                name=name,
                strategy=spec.strategy.kind,
                phase=d.phase,
                reason=d.reason,
                message=d.message,
                rows=d.rows,
                decision=d.result,
                best=d.best,
                conditions=[list(x) for x in d.conditions],
                seconds=round(time.monotonic() - began, 1),
            )
            _save(run_dir, result)
            for start in d.start:
                child = child_spec(spec, start.trial, start.step, current)
                if start.step.kind == "TrainStage":
                    child = child.model_copy(update={"nodes": 1})
                say(f"{start.trial.name}/{start.step.name}: started")
                inflight[pool.submit(run_one, start, child)] = start
            if not inflight:
                return result
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                inflight.pop(fut)
                fut.result()  # a bug in a worker surfaces here, not silently
    except BaseException:
        for ex in executors.values():
            ex.stop()
        wait(list(inflight))
        raise
    finally:
        pool.shutdown(wait=True)
