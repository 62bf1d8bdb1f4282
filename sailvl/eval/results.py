"""results.json, the paper's Table 4 category averages, and the Markdown table.

Normalisation (every benchmark is put on 0-100 before averaging, as Table 4 does):

- MME: the native score is perception + cognition, each category acc + acc+
  (0-200), so the full 14 categories give 0-2800; normalised = score / 28.
- OCRBench: the native score is the 1000-point total (rows right x 1000 / rows, which
  equals VLMEvalKit's ``Final Score`` on the full 1000 rows); normalised = score / 10.
- everything else is already a percentage (multiple-choice accuracy x 100, ANLS x 100,
  POPE F1, HallusionBench mean of aAcc/fAcc/qAcc, ...).

A category average is the mean of the normalised scores of its benchmarks that have
a score; ``overall`` is the mean over all categorised benchmarks with a score (the
paper's "Avg" column averages benchmarks, not categories). Benchmarks without a category
(the understanding suite) get their own plain mean ``understanding``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

CATEGORY_TITLES = {
    "general_vqa": "General VQA",
    "ocr_vqa": "OCR VQA",
    "math_knowledge": "Math & Knowledge",
    "hallucination": "Hallucination",
}
NATIVE_SCALE = {"mme": 28.0, "ocrbench": 10.0}
"""Divisor taking a scorer's native score to 0-100."""


def category_of(name: str) -> str | None:
    from sailvl.api.benchmarks import BENCHMARKS

    b = BENCHMARKS.get(name)
    return b.category if b else None


def normalised(scorer: str, score: float | None) -> float | None:
    if score is None:
        return None
    return score / NATIVE_SCALE.get(scorer, 1.0)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(benchmarks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``categories``, ``overall`` and ``understanding`` from per-benchmark entries."""
    cats: dict[str, list[float]] = {}
    uncategorised: list[float] = []
    for entry in benchmarks.values():
        value = entry.get("normalized")
        if value is None:
            continue
        cat = entry.get("category")
        if cat:
            cats.setdefault(cat, []).append(value)
        else:
            uncategorised.append(value)
    categories = {c: _mean(v) for c, v in cats.items()}
    flat = [v for vs in cats.values() for v in vs]
    return {
        "categories": {c: v for c, v in categories.items() if v is not None},
        "overall": _mean(flat),
        "understanding": _mean(uncategorised),
    }


def build_results(benchmarks: dict[str, dict[str, Any]], *, meta: dict[str, Any]) -> dict[str, Any]:
    agg = aggregate(benchmarks)
    errors = {n: sum(e.get("errors", {}).values()) for n, e in benchmarks.items()}
    return {
        "schema": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **meta,
        "benchmarks": benchmarks,
        **agg,
        "errors": {n: c for n, c in errors.items() if c},
    }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown_table(results: dict[str, Any]) -> str:
    """Per-category Markdown: one section per category, benchmarks with native and
    normalised scores, the category average, then the overall average."""
    lines = [f"# Evaluation: {results.get('model', '')}", ""]
    benches = results.get("benchmarks", {})
    order = [*CATEGORY_TITLES, None]
    for cat in order:
        rows = [(n, e) for n, e in benches.items() if e.get("category") == cat]
        if not rows:
            continue
        title = CATEGORY_TITLES.get(cat or "", "Other / understanding")
        lines += [f"## {title}", "", "| benchmark | scorer | score | normalised | rows | errors |"]
        lines.append("|---|---|---:|---:|---:|---:|")
        for n, e in rows:
            err = sum(e.get("errors", {}).values())
            lines.append(
                f"| {n} | {e.get('scorer')} | {_fmt(e.get('score'))} | "
                f"{_fmt(e.get('normalized'))} | {e.get('scored_rows', 0)} | {err} |"
            )
        avg = results.get("categories", {}).get(cat) if cat else results.get("understanding")
        lines += ["", f"Average: {_fmt(avg)}", ""]
    lines += [
        "## Table 4 summary",
        "",
        "| " + " | ".join([*CATEGORY_TITLES.values(), "Avg"]) + " |",
    ]
    lines.append("|" + "---:|" * (len(CATEGORY_TITLES) + 1))
    cats = results.get("categories", {})
    cells = [_fmt(cats.get(c)) for c in CATEGORY_TITLES] + [_fmt(results.get("overall"))]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
