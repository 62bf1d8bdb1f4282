"""``sailvl report RESULTS... --out DIR``: scaling fits, correlation and plots; an
Experiment run folder (``sailvl run experiment.yaml``) gets its experiment report."""

from __future__ import annotations

from typing import Any

from .report import load_results, scaling_report


def main(args: Any) -> int:
    from pathlib import Path

    from sailvl.experiment.local import STATUS_FILE

    runs = [Path(r) for r in args.results if (Path(r) / STATUS_FILE).is_file()]
    if runs:  # Experiment run folders (sailvl run experiment.yaml): their own report
        from sailvl.experiment.report import write_report

        for run in runs:
            out = args.out / run.name if len(runs) > 1 else args.out
            print(f"report: experiment {run} -> {write_report(run, out=out)}")
        if len(runs) == len(args.results):
            return 0
        args.results = [r for r in args.results if Path(r) not in runs]
    results = load_results(args.results)
    if not results:
        print("report: no results.json found")
        return 1
    report = scaling_report(results, args.out)
    print(f"report: {len(results)} results, {len(report['plots'])} plots -> {args.out}")
    return 0
