"""Rank statistics of the analyses: ranks with ties, Kendall tau-b and Spearman rho.

Pure Python (no numpy, no scipy); Pearson and the log-linear fit are
:mod:`sailvl.eval.scaling`'s. Ties get the average of the ranks they span (Spearman's
convention), and Kendall's tau is tau-b (ties corrected, as scipy's ``kendalltau``
default), so two identical orderings give 1.0 even with ties.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sailvl.eval.scaling import pearson


def ranks(values: Sequence[float], descending: bool = True) -> list[float]:
    """Rank 1 is the highest value (``descending``); tied values share their mean rank."""
    order = sorted(range(len(values)), key=lambda i: -values[i] if descending else values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def kendall_tau(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Kendall's tau-b of two paired series; ValueError when either is constant."""
    if len(xs) != len(ys):
        raise ValueError(f"xs: {len(xs)} values for {len(ys)} ys")
    if len(xs) < 2:
        raise ValueError("xs: at least two pairs are needed")
    concordant = discordant = tie_x = tie_y = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tie_x += 1
            elif dy == 0:
                tie_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + tie_x) * (concordant + discordant + tie_y))
    if denom == 0:
        raise ValueError("xs: a constant series has no rank correlation")
    return (concordant - discordant) / denom


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the (tie-averaged) ranks."""
    return pearson(ranks(xs), ranks(ys))


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b * x``: (a, b, R^2); ValueError for a constant ``xs``."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("xs: at least two paired values are needed")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("xs: a constant series has no slope")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0)
