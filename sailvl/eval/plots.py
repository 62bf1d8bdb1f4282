"""PNG plots of scaling reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .scaling import LogLinearFit


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scaling(
    path: Path,
    title: str,
    tokens: Sequence[float],
    scores: Sequence[float],
    fit: LogLinearFit | None,
) -> Path:
    """Scores against tokens (log x axis) with the fitted line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ax.scatter(tokens, scores, color="tab:blue", zorder=3, label="checkpoints")
    if fit is not None and len(tokens) >= 2:
        lo, hi = math.log10(min(tokens)), math.log10(max(tokens))
        xs = [10 ** (lo + (hi - lo) * i / 50) for i in range(51)]
        label = f"{fit.a:.2f} + {fit.b:.2f} log10(T), R²={fit.r2:.3f}"
        ax.plot(xs, [fit.predict(x) for x in xs], color="tab:red", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_correlation(
    path: Path, xs: Sequence[float], ys: Sequence[float], r: float | None, labels: tuple[str, str]
) -> Path:
    """One series against another (e.g. pretraining vs SFT scores) with Pearson r."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(xs, ys, color="tab:green")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title("Pearson r = " + ("-" if r is None else f"{r:.3f}"))
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Lay out, write (creating the folder) and close a figure; closing frees it, which
    matters when a report draws many plots in one process."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
