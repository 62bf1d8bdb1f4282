"""The local run's report: ``report/summary.md`` and PNG plots.

- loss per stage (the executor samples each stage's reported loss while it runs);
- eval scores against cumulative training tokens on a log axis, with the log-linear
  fit ``score = a + b * log10(tokens)`` of :mod:`sailvl.eval.scaling`;
- caption statistics (Table 1 style) reported by the caption step;
- the untrained baseline against the final model, per benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sailvl.api.compose import steps
from sailvl.api.curriculum import CurriculumSpec

from .executor import BASELINE
from .state import RunState


def scaling_points(spec: CurriculumSpec, state: RunState) -> dict[str, list[tuple[float, float]]]:
    """benchmark -> [(cumulative tokens, score)] over the stage evals and the final eval."""
    out: dict[str, list[tuple[float, float]]] = {}
    for step in steps(spec):
        rec = state.steps.get(step.name)
        if step.kind != "EvalSuite" or rec is None or rec.phase != "Succeeded":
            continue
        tokens = rec.status.get("tokens") or _tokens_upto(spec, state, step.stage_index)
        if not tokens:
            continue
        for bench, score in rec.scores.items():
            out.setdefault(bench, []).append((float(tokens), float(score)))
    return out


def _tokens_upto(spec: CurriculumSpec, state: RunState, index: int | None) -> int:
    if index is None:
        return 0
    total = 0
    for st in spec.stages[: index + 1]:
        rec = state.steps.get(st.name)
        total += int(rec.tokens or 0) if rec else 0
    return total


def caption_stats_table(stats: dict[str, Any], name: str = "captions") -> list[str]:
    """Table 1 of the paper as Markdown from a CaptionJob's ``status.stats``.

    The caption step reports ``<lang>_<field>`` values of
    :func:`sailvl.quality.stats.dataset_stats` (a seeded draw of the output captions):
    one row per language, the paper's columns in its order. "Unique ... per sample" is
    the paper's definition, distinct items over the whole draw divided by the number of
    samples, so rows compare only at the same draw size, which the row states.
    """
    from sailvl.quality.stats import FIELDS, HEADERS

    out = [
        "## Caption statistics (Table 1)",
        "",
        "| Dataset | Lang | Samples | " + " | ".join(HEADERS) + " |",
        "|---|---|---:|" + "---:|" * len(HEADERS),
    ]
    for lang in ("en", "zh"):
        if f"{lang}_samples" not in stats:
            continue
        cells = [f"{float(stats.get(f'{lang}_{f}', float('nan'))):.2f}" for f in FIELDS]
        samples = int(float(stats[f"{lang}_samples"]))
        out.append(f"| {name} | {lang} | {samples} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Avg. Length: words per caption. Unique n-grams / nouns / verbs / adjectives per "
        "sample: distinct items over the whole draw divided by its samples (Table 1's "
        "definition; English tokenised as NLTK does, Chinese by jieba).",
    ]
    return out


def write_report(workdir: Path, spec: CurriculumSpec, state: RunState) -> Path:
    folder = workdir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    plots = _plots(folder, spec, state)
    lines = ["# Curriculum report", ""]
    result = state.extra.get("result", {})
    lines += [f"**Result:** {result.get('action', 'running')} - {result.get('message', '')}", ""]
    lines += ["| step | kind | phase | seconds | tokens | scores |", "|---|---|---|---|---|---|"]
    for name, rec in state.steps.items():
        kind = next((s.kind for s in steps(spec) if s.name == name), "EvalSuite")
        scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(rec.scores.items()))
        lines.append(
            f"| {name} | {kind} | {rec.phase} | {rec.seconds or ''} | {rec.tokens or ''} | {scores} |"
        )
    base = state.steps.get(BASELINE)
    final = state.steps.get("final-eval")
    if base is not None and final is not None:
        lines += [
            "",
            "## Trained vs untrained baseline",
            "",
            "In-distribution: drawn by the generators the SFT data was drawn from (other "
            "seeds). Held-out: the same questions drawn differently (other words, font, "
            "layouts; `sailvl/eval/synthetic_heldout.py`), never trained on.",
            "",
            "| benchmark | set | baseline | final | change |",
        ]
        lines.append("|---|---|---|---|---|")
        for bench in sorted(set(base.scores) | set(final.scores), key=_set_order):
            b, f = base.scores.get(bench), final.scores.get(bench)
            delta = f"{f - b:+.2f}" if b is not None and f is not None else ""
            lines.append(f"| {bench} | {which_set(bench)} | {_fmt(b)} | {_fmt(f)} | {delta} |")
    fits = _fits(scaling_points(spec, state))
    if fits:
        lines += [
            "",
            "## Scaling: score = a + b * log10(tokens)",
            "",
            "| benchmark | a | b | R^2 | points |",
        ]
        lines.append("|---|---|---|---|---|")
        for bench, (a, b, r2, n) in sorted(fits.items()):
            lines.append(f"| {bench} | {a:.3f} | {b:.3f} | {r2:.3f} | {n} |")
    cap = state.steps.get("caption")
    if cap is not None and cap.status.get("stats"):
        lines += ["", *caption_stats_table(cap.status["stats"])]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    out = folder / "summary.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def which_set(bench: str) -> str:
    """in-distribution / held-out for the demo's synthetic benchmarks, else ''."""
    from sailvl.eval.synthetic import GENERATORS, HELDOUT

    if bench in GENERATORS:
        return "in-distribution"
    return "held-out" if bench in HELDOUT else ""


def _set_order(bench: str) -> tuple[int, str]:
    """In-distribution rows first, then held-out, then anything else."""
    return (
        ["in-distribution", "held-out"].index(which_set(bench)) if which_set(bench) else 2,
        bench,
    )


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _fits(
    points: dict[str, list[tuple[float, float]]],
) -> dict[str, tuple[float, float, float, int]]:
    from sailvl.eval.scaling import fit_log_linear

    out = {}
    for bench, pts in points.items():
        if len({t for t, _ in pts}) >= 2:
            fit = fit_log_linear([t for t, _ in pts], [s for _, s in pts])
            out[bench] = (fit.a, fit.b, fit.r2, len(pts))
    return out


def _plots(folder: Path, spec: CurriculumSpec, state: RunState) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    losses = {s.name: state.steps[s.name].losses for s in spec.stages if s.name in state.steps}
    if any(losses.values()):
        fig, ax = plt.subplots(figsize=(7, 4))
        offset = 0.0
        for name, pts in losses.items():
            if pts:
                ax.plot([offset + p[0] for p in pts], [p[1] for p in pts], label=name)
                offset += pts[-1][0]
        ax.set(xlabel="optimizer step (stages concatenated)", ylabel="loss", title="Loss per stage")
        ax.legend(fontsize=8)
        made.append(_save(fig, folder / "loss.png", plt))
    points = scaling_points(spec, state)
    fits = _fits(points)
    if points:
        fig, ax = plt.subplots(figsize=(7, 4))
        for bench, pts in sorted(points.items()):
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            line = ax.plot(xs, ys, "o", label=bench)[0]
            if bench in fits:
                import math

                a, b, _, _ = fits[bench]
                grid = [min(xs) * (max(xs) / min(xs)) ** (i / 20) for i in range(21)]
                ax.plot(grid, [a + b * math.log10(x) for x in grid], "--", color=line.get_color())
        ax.set_xscale("log")
        ax.set(
            xlabel="training tokens",
            ylabel="score",
            title="Eval scores against tokens (log-linear fit)",
        )
        ax.legend(fontsize=8)
        made.append(_save(fig, folder / "scores_vs_tokens.png", plt))
    cap = state.steps.get("caption")
    stats: dict[str, Any] = (cap.status.get("stats") or {}) if cap else {}
    if stats:
        fig, ax = plt.subplots(figsize=(7, 4))
        keys = sorted(stats)
        ax.barh(keys, [float(stats[k]) for k in keys])
        ax.set(title="Caption statistics (per sample)")
        made.append(_save(fig, folder / "caption_stats.png", plt))
    return made


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
