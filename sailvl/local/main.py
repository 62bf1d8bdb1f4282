"""``sailvl run FILE``: the whole curriculum on this machine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sailvl.api import SpecError

SETUP_ANNOTATION = "sailvl.io/local-setup"


def workdir_for(storage: str, runs: Path, name: str) -> Path:
    """Where state, job configs and logs go: the storage folder itself for file://."""
    if storage.startswith("file://"):
        return Path(storage[len("file://") :])
    return (runs / name).resolve()


def main(args: Any) -> int:
    from .source import load

    try:
        name, spec, obj = load(args.file, args.runs, args.storage)
    except SpecError as err:
        print(f"invalid curriculum {args.file}:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    from .display import Display
    from .executor import LocalExecutor

    workdir = workdir_for(spec.storage.uri, args.runs, name)
    workdir.mkdir(parents=True, exist_ok=True)
    setup = ((obj.get("metadata") or {}).get("annotations") or {}).get(SETUP_ANNOTATION)
    display = Display()
    try:
        if setup:
            from .assets import ensure_assets

            with display.console.status("generating synthetic data and the initial model"):
                ensure_assets(spec.storage.uri, setup)
        with display:
            ex = LocalExecutor(name, spec, workdir, display)
            ex.baseline()
            rc = ex.run()
    except KeyboardInterrupt:
        print("\ninterrupted: nothing is lost; rerun the same command to continue", file=sys.stderr)
        return 130
    from .report import write_report

    report = write_report(workdir, spec, ex.state)
    result = ex.state.extra.get("result", {})
    display.console.print(f"[bold]{name}[/]: {result.get('message', '')}")
    display.console.print(f"report: {report}")
    return rc
