"""``sailvl report RESULTS... --out DIR``: scaling fits, correlation and plots."""

from __future__ import annotations

from typing import Any

from .report import load_results, scaling_report


def main(args: Any) -> int:
    results = load_results(args.results)
    if not results:
        print("report: no results.json found")
        return 1
    report = scaling_report(results, args.out)
    print(f"report: {len(results)} results, {len(report['plots'])} plots -> {args.out}")
    return 0
