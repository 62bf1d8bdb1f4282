"""An Experiment's report: ``<run>/report/summary.md`` and PNG plots.

Drawn from the status (``<run>/experiment.json``, :class:`.local.ExperimentResult`):
the trial table (variant, phase, tokens, selection metric, scores), the strategy's
decision as tables, and one plot per strategy:

- quickQuality: the candidates' scores per subset size, ranking and rank agreement;
- composition: the effect of reducing each group, the proposed ``data:`` list;
- incremental: each candidate's score against the best before it, accepted or not,
  and the curated ``data:`` list;
- checkpointScaling: score against tokens (log axis) with the log-linear fit, for the
  selection metric and each category (:func:`sailvl.eval.plots.plot_scaling`);
- correlation: pretrained against post-SFT scores with the least-squares line;
- compare: the plans' score-vs-samples curves together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .local import ExperimentResult, load_result


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _variant(v: dict[str, Any]) -> str:
    return ", ".join(f"{k} {x}" for k, x in v.items() if x is not None)


def trial_table(rows: list[dict[str, Any]], metric: str) -> list[str]:
    out = [
        f"| trial | variant | phase | tokens | {metric} | scores |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted((r.get("scores") or {}).items()))
        note = f" ({r['message']})" if r.get("message") else ""
        out.append(
            f"| {r['name']} | {_variant(r.get('variant') or {})} | {r.get('phase')}{note} | "
            f"{_fmt(r.get('tokens'))} | {_fmt(r.get('overall'))} | {scores} |"
        )
    return out


def _data_yaml(data: list[dict[str, Any]]) -> list[str]:
    return ["```yaml", yaml.safe_dump({"data": data}, sort_keys=False).rstrip(), "```"]


def decision_lines(result: ExperimentResult) -> list[str]:
    d, kind = result.decision, result.strategy
    out: list[str] = []
    if kind == "quickQuality":
        for n, ranking in d.get("rankings", {}).items():
            out += ["", f"Ranking at {n} samples:", "", "| rank | candidate | score |"]
            out += ["|---|---|---|"] + [
                f"| {e['rank']:g} | {e['candidate']} | {e['score']:.2f} |" for e in ranking
            ]
        if d.get("agreement"):
            out += ["", "| sizes | candidates | Kendall tau | Spearman |", "|---|---|---|---|"]
            for a in d["agreement"]:
                out.append(
                    f"| {a['samples'][0]} vs {a['samples'][1]} | {a['candidates']} | "
                    f"{_fmt(a['kendallTau'])} | {_fmt(a['spearman'])} |"
                )
    elif kind == "composition":
        out += ["", f"Base: {_fmt(d.get('base'))}", "", "| group | effect of x"
                f"{d.get('factor', 0.5):g} | proposed |", "|---|---|---|"]  # fmt: skip
        for g, e in (d.get("effects") or {}).items():
            keep = "reduce" if g in d.get("reduce", []) else "keep"
            out.append(f"| {g} | {_fmt(e)} | {keep} |")
        if d.get("data"):
            out += ["", "Proposed mixture:", ""] + _data_yaml(d["data"])
    elif kind == "incremental":
        out += ["", f"Base: {_fmt(d.get('base'))}, tolerance {d.get('tolerance')}", ""]
        out += ["| candidate | score | best before | delta | decision |", "|---|---|---|---|---|"]
        for e in d.get("steps", []):
            verdict = (
                "accepted"
                if e["accepted"]
                else f"rejected{' (' + e['why'] + ')' if e.get('why') else ''}"
            )
            out.append(
                f"| {e['candidate']} | {_fmt(e['score'])} | {_fmt(e['bestBefore'])} | "
                f"{_fmt(e['delta'])} | {verdict} |"
            )
        if d.get("data"):
            out += ["", "Curated collection:", ""] + _data_yaml(d["data"])
    elif kind == "checkpointScaling":
        out += ["", "score = a + b * log10(tokens)", "", "| metric | a | b | R^2 | points |"]
        out += ["|---|---|---|---|---|"] + [
            f"| {k} | {f['a']:.3f} | {f['b']:.3f} | {f['r2']:.3f} | {f['n']} |"
            for k, f in sorted((d.get("fits") or {}).items())
        ]
    elif kind == "correlation":
        out += ["", f"Pearson rho {_fmt(d.get('pearson'))}, R^2 {_fmt(d.get('r2'))}", ""]
        out += ["| checkpoint | pretrained | after SFT |", "|---|---|---|"]
        out += [
            f"| {p['checkpoint']} | {p['pretrain']:.2f} | {p['sft']:.2f} |"
            for p in d.get("points", [])
        ]
    elif kind == "compare":
        out += ["", "| plan | curve (samples: score) | final |", "|---|---|---|"]
        for plan, pts in (d.get("curves") or {}).items():
            curve = ", ".join(f"{int(x)}: {y:.2f}" for x, y in pts)
            out.append(f"| {plan} | {curve} | {_fmt((d.get('final') or {}).get(plan))} |")
    return out


def write_report(
    run_dir: Path, result: ExperimentResult | None = None, out: Path | None = None
) -> Path:
    """Write ``summary.md`` and the plots into ``out`` (default ``<run_dir>/report``);
    return the summary's path."""
    run_dir = Path(run_dir)
    result = result or load_result(run_dir)
    if result is None:
        raise FileNotFoundError(f"{run_dir}: no experiment.json (not an Experiment run)")
    folder = out or run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    metric = result.decision.get("metric", "overall")
    lines = [f"# Experiment {result.name} ({result.strategy})", ""]
    lines += [f"**{result.phase}:** {result.message}", ""]
    if result.best:
        lines += [f"**Best:** {result.best}", ""]
    for ctype, status, reason, message in result.conditions:
        mark = "warning: " if status == "False" else ""
        lines += [f"- {mark}{ctype} = {status} ({reason}): {message}"]
    lines += ["", "## Trials", ""] + trial_table(result.rows, metric)
    lines += ["", "## Decision"] + decision_lines(result)
    plots = plot(folder, result)
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    out = folder / "summary.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def plot(folder: Path, result: ExperimentResult) -> list[Path]:
    import importlib

    # The project's plot helpers (Agg backend, save-and-close); untyped, so not followed.
    plots: Any = importlib.import_module("sailvl.eval.plots")
    d, kind = result.decision, result.strategy
    metric = d.get("metric", "overall")
    plt = plots._pyplot()
    made: list[Path] = []
    if kind == "quickQuality" and d.get("rankings"):
        fig, ax = plt.subplots(figsize=(7, 4))
        sizes = list(d["rankings"])
        cands = [e["candidate"] for e in d["rankings"][sizes[-1]]]
        width = 0.8 / max(1, len(sizes))
        for i, n in enumerate(sizes):
            vals = {e["candidate"]: e["score"] for e in d["rankings"][n]}
            xs = [j + i * width for j in range(len(cands))]
            ax.bar(xs, [vals.get(c, 0.0) for c in cands], width, label=f"{n} samples")
        ax.set_xticks([j + width * (len(sizes) - 1) / 2 for j in range(len(cands))], cands)
        ax.set(ylabel=metric, title="Quick quality: candidates by subset size")
        ax.legend(fontsize=8)
        made.append(plots._save(plt, fig, folder / "quick_quality.png"))
    elif kind == "composition" and d.get("effects"):
        effects = {g: e for g, e in d["effects"].items() if e is not None}
        fig, ax = plt.subplots(figsize=(7, 4))
        colors = ["tab:green" if g in d.get("reduce", []) else "tab:red" for g in effects]
        ax.bar(list(effects), list(effects.values()), color=colors)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set(
            ylabel=f"{metric} change",
            title=f"Composition: effect of x{d.get('factor', 0.5):g} per group",
        )
        made.append(plots._save(plt, fig, folder / "composition.png"))
    elif kind == "incremental" and d.get("steps"):
        steps = d["steps"]
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = list(range(len(steps)))
        ax.plot(xs, [e["bestBefore"] for e in steps], "k--", label="best before")
        for x, e in zip(xs, steps, strict=True):
            if e["score"] is not None:
                ax.plot(x, e["score"], "o", color="tab:green" if e["accepted"] else "tab:red")
        ax.set_xticks(xs, [e["candidate"] for e in steps])
        ax.set(ylabel=metric, title="Incremental: accepted (green) / rejected (red)")
        ax.legend(fontsize=8)
        made.append(plots._save(plt, fig, folder / "incremental.png"))
    elif kind == "checkpointScaling":
        scaling: Any = importlib.import_module("sailvl.eval.scaling")
        for key, pts in sorted((d.get("points") or {}).items()):
            if key not in d.get("fits", {}) or "." in key:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            fit = scaling.fit_log_linear(xs, ys)
            made.append(plots.plot_scaling(folder / f"scaling_{key}.png", key, xs, ys, fit))
    elif kind == "correlation" and d.get("points"):
        xs = [p["pretrain"] for p in d["points"]]
        ys = [p["sft"] for p in d["points"]]
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(xs, ys, color="tab:green")
        for p in d["points"]:
            ax.annotate(p["checkpoint"], (p["pretrain"], p["sft"]), fontsize=7)
        if d.get("fit"):
            lo, hi = min(xs), max(xs)
            a, b = d["fit"]["a"], d["fit"]["b"]
            ax.plot(
                [lo, hi],
                [a + b * lo, a + b * hi],
                color="tab:red",
                label=f"R^2 {d.get('r2', 0):.3f}",
            )
            ax.legend(fontsize=8)
        ax.set(
            xlabel=f"pretrained ({d.get('pretrainMetric')})",
            ylabel=f"after SFT ({metric})",
            title=f"Pearson rho = {_fmt(d.get('pearson')) or '-'}",
        )
        made.append(plots._save(plt, fig, folder / "correlation.png"))
    elif kind == "compare" and d.get("curves"):
        fig, ax = plt.subplots(figsize=(7, 4))
        for plan, pts in d["curves"].items():
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=plan)
        ax.set(xlabel="training samples", ylabel=metric, title="Compare: score against samples")
        ax.legend(fontsize=8)
        made.append(plots._save(plt, fig, folder / "compare.png"))
    return made
