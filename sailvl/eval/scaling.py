"""Scaling-law fits: score = a + b * log10(tokens), and Pearson correlation.

The paper reports that benchmark scores grow linearly in the logarithm of the training
tokens, and that pretraining and SFT scores of the same checkpoints correlate (Pearson
0.97). :func:`fit_log_linear` is ordinary least squares of ``score`` on
``log10(tokens)``; ``r2`` is 1 - SS_res / SS_tot (1.0 when every score is equal and the
fit is exact). Pure Python: no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LogLinearFit:
    """score ~= a + b * log10(tokens)."""

    a: float
    """Intercept: the score the line gives at 1 token (log10 = 0)."""
    b: float
    """Slope: score gained per tenfold increase of tokens."""
    r2: float
    """Coefficient of determination of the fit, in (-inf, 1]."""
    n: int
    """Number of points fitted."""

    def predict(self, tokens: float) -> float:
        return self.a + self.b * math.log10(tokens)


def fit_log_linear(tokens: Sequence[float], scores: Sequence[float]) -> LogLinearFit:
    """Least-squares fit; needs >= 2 points with positive tokens and distinct x values."""
    if len(tokens) != len(scores):
        raise ValueError(f"tokens: {len(tokens)} values for {len(scores)} scores")
    if len(tokens) < 2:
        raise ValueError("tokens: at least two points are needed for a fit")
    if any(t <= 0 for t in tokens):
        raise ValueError("tokens: every token count must be > 0 (log10)")
    xs = [math.log10(t) for t in tokens]
    mx, my = sum(xs) / len(xs), sum(scores) / len(scores)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("tokens: all token counts are equal; the slope is undefined")
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, scores, strict=True))
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, scores, strict=True))
    ss_tot = sum((y - my) ** 2 for y in scores)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return LogLinearFit(a=a, b=b, r2=r2, n=len(xs))


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation coefficient; ValueError when either series is constant."""
    if len(xs) != len(ys):
        raise ValueError(f"xs: {len(xs)} values for {len(ys)} ys")
    if len(xs) < 2:
        raise ValueError("xs: at least two pairs are needed")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        raise ValueError("xs: a constant series has no correlation")
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
