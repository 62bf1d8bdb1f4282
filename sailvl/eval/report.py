"""``sailvl report``: the paper's analysis over a series of results.json files.

Input: results.json files of successive checkpoints, each carrying ``tokens`` (training
tokens seen). For every metric (``overall``, each category, each benchmark's normalised
score) with at least two checkpoints of distinct token counts, the report fits
score = a + b * log10(tokens) and plots it. Results may belong to several *series*
(``labels.series`` in results.json, e.g. ``pretrain`` and ``sft``, or grouped by the
caller); the Pearson correlation of the first two series' ``overall`` scores is
computed over the checkpoints both have (matched by tokens), as the paper correlates
pretraining and SFT scores.

Output: ``report.json`` (fits, correlation), ``report.md`` and PNG plots in a folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .plots import plot_correlation, plot_scaling
from .scaling import fit_log_linear, pearson


def metric_points(results: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """metric name -> [(tokens, value)] over the results that have both."""
    out: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, tokens: float, value: Any) -> None:
        if isinstance(value, int | float):
            out.setdefault(name, []).append((float(tokens), float(value)))

    for r in results:
        tokens = r.get("tokens")
        if not isinstance(tokens, int | float) or tokens <= 0:
            continue
        add("overall", tokens, r.get("overall"))
        for cat, v in (r.get("categories") or {}).items():
            add(f"category:{cat}", tokens, v)
        for name, entry in (r.get("benchmarks") or {}).items():
            add(f"benchmark:{name}", tokens, entry.get("normalized"))
    return out


def _series_of(r: dict[str, Any]) -> str:
    return str((r.get("labels") or {}).get("series", "all"))


def scaling_report(results: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """Fit, correlate, plot and write the report; returns report.json's content."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        series.setdefault(_series_of(r), []).append(r)
    report: dict[str, Any] = {"series": {}, "correlation": None, "plots": []}
    for sname, rs in series.items():
        fits: dict[str, Any] = {}
        for metric, pts in sorted(metric_points(rs).items()):
            pts.sort()
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            try:
                fit = fit_log_linear(xs, ys)
            except ValueError as err:
                fits[metric] = {"points": len(pts), "error": str(err)}
                continue
            fits[metric] = {"a": fit.a, "b": fit.b, "r2": fit.r2, "points": fit.n}
            png = out_dir / f"{sname}-{metric.replace(':', '-')}.png"
            plot_scaling(png, f"{sname}: {metric}", xs, ys, fit)
            report["plots"].append(png.name)
        report["series"][sname] = {"checkpoints": len(rs), "fits": fits}
    names = list(series)
    if len(names) >= 2:
        a = {r["tokens"]: r.get("overall") for r in series[names[0]] if r.get("tokens")}
        b = {r["tokens"]: r.get("overall") for r in series[names[1]] if r.get("tokens")}
        common = sorted(t for t in a if t in b and a[t] is not None and b[t] is not None)
        corr: dict[str, Any] = {"x": names[0], "y": names[1], "points": len(common)}
        try:
            corr["pearson"] = pearson([a[t] for t in common], [b[t] for t in common])
            png = out_dir / "correlation.png"
            plot_correlation(
                png,
                [a[t] for t in common],
                [b[t] for t in common],
                corr["pearson"],
                (names[0], names[1]),
            )
            report["plots"].append(png.name)
        except ValueError as err:
            corr["error"] = str(err)
        report["correlation"] = corr
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict[str, Any]) -> str:
    lines = ["# Scaling report", ""]
    for sname, s in report["series"].items():
        lines += [f"## Series `{sname}` ({s['checkpoints']} checkpoints)", ""]
        lines += ["| metric | a | b (per 10x tokens) | R² | points |", "|---|---:|---:|---:|---:|"]
        for metric, f in s["fits"].items():
            if "error" in f:
                lines.append(f"| {metric} | - | - | - | {f['points']} |")
            else:
                lines.append(
                    f"| {metric} | {f['a']:.3f} | {f['b']:.3f} | {f['r2']:.4f} | {f['points']} |"
                )
        lines.append("")
    c = report.get("correlation")
    if c:
        value = f"{c['pearson']:.4f}" if "pearson" in c else f"n/a ({c.get('error')})"
        lines += [f"Pearson correlation of overall scores, {c['x']} vs {c['y']}: {value}", ""]
    lines += [f"![{p}]({p})" for p in report["plots"]]
    return "\n".join(lines) + "\n"


def load_results(paths: Sequence[str]) -> list[dict[str, Any]]:
    """results.json contents from files or folders (a folder: every results.json below)."""
    out = []
    for p in map(Path, paths):
        files = sorted(p.rglob("results.json")) if p.is_dir() else [p]
        for f in files:
            out.append(json.loads(f.read_text()))
    return out
