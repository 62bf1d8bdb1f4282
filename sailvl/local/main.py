"""``sailvl run FILE``: a whole Curriculum, or an Experiment's trials, on this machine.

Stopping: Ctrl-C (SIGINT), ``kill`` (SIGTERM) and a closed terminal (SIGHUP) are one
path. The handlers below raise :class:`Interrupted`, a KeyboardInterrupt, wherever the
main thread is; the executor stops the running step's process group on its way out, and
``main`` returns 128 + the signal number (130, 143, 129). Without the SIGTERM / SIGHUP
handlers those signals would end this process at once and leave the step's processes
(in a session of their own) training on as orphans.

One run per directory: :class:`sailvl.local.lock.RunLock` is held from before the
first write to the end, and a second ``sailvl run`` on the same directory exits 3 with
a message naming the holder.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sailvl.api import SpecError

SETUP_ANNOTATION = "sailvl.io/local-setup"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_LOCKED = 3


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised where the main thread was (the executor stops the step)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` inside the block."""
    old = {sig: signal.signal(sig, _raise_interrupted) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _say(message: str) -> None:
    with contextlib.suppress(OSError):  # stderr may be a terminal that is gone (SIGHUP)
        print(message, file=sys.stderr)


def workdir_for(storage: str, runs: Path, name: str) -> Path:
    """Where state, job configs and logs go: the storage folder itself for file://."""
    if storage.startswith("file://"):
        return Path(storage[len("file://") :])
    return (runs / name).resolve()


def main(args: Any) -> int:
    from sailvl.data.datajob import is_datajob, run_file

    if is_datajob(args.file):  # a DataJob: its indexes one after the other, no state
        return run_file(args.file)
    from .source import load

    try:
        name, spec, obj = load(args.file, args.runs, args.storage)
    except SpecError as err:
        print(f"invalid resource {args.file}:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    workdir = workdir_for(spec.storage.uri, args.runs, name)
    workdir.mkdir(parents=True, exist_ok=True)
    from .lock import RunLock, RunLocked

    lock = RunLock(workdir)
    try:
        with stop_signals():
            try:
                lock.acquire()
            except RunLocked as err:
                _say(f"sailvl run: {err}")
                return EXIT_LOCKED
            try:
                if lock.stale.get("pid"):
                    _say(f"taking over the stale lock of pid {lock.stale['pid']} (not running)")
                return _run(name, spec, obj, workdir, lock)
            finally:
                lock.release()
    except Interrupted as err:
        _say(
            f"\ninterrupted ({signal.Signals(err.signum).name}): the running step was stopped "
            "and nothing is lost; rerun the same command to continue"
        )
        return 128 + err.signum


def _run(name: str, spec: Any, obj: dict[str, Any], workdir: Path, lock: Any) -> int:
    from sailvl.api.experiment import ExperimentSpec

    from .display import Display
    from .executor import LocalExecutor

    setup = ((obj.get("metadata") or {}).get("annotations") or {}).get(SETUP_ANNOTATION)
    display = Display()
    if setup:
        from .assets import ensure_assets

        with display.console.status("generating synthetic data and the initial model"):
            ensure_assets(spec.storage.uri, setup)
    if isinstance(spec, ExperimentSpec):
        return _run_experiment(name, spec, workdir, lock, display.console)
    with display:
        ex = LocalExecutor(name, spec, workdir, display, lock=lock)
        ex.baseline()
        rc = ex.run()
    from .report import write_report

    report = write_report(workdir, spec, ex.state)
    result = ex.state.extra.get("result", {})
    display.console.print(f"[bold]{name}[/]: {result.get('message', '')}")
    display.console.print(f"report: {report}")
    return rc


def _run_experiment(name: str, spec: Any, workdir: Path, lock: Any, console: Any) -> int:
    """The trials under the parallelism limit (sailvl/experiment/local.py), then the
    report; exit 0 when the strategy decided, 1 when it could not."""
    from sailvl.experiment.local import run_experiment
    from sailvl.experiment.report import write_report
    from sailvl.experiment.trials import trials

    console.print(
        f"[bold]{name}[/]: {spec.strategy.kind}, {len(trials(spec))} trials, "
        f"parallelism {spec.parallelism}"
    )
    result = run_experiment(spec, workdir, name, lock=lock, say=console.print)
    report = write_report(workdir, result)
    console.print(f"[bold]{name}[/]: {result.phase}: {result.message}")
    for ctype, status, reason, message in result.conditions:
        if status == "False":
            console.print(f"[yellow]warning[/] {ctype} ({reason}): {message}")
    console.print(f"report: {report}")
    return 0 if result.ok else 1
