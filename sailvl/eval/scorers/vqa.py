"""Short-answer VQA scorers: ANLS, VQA accuracy, relaxed accuracy, exact match.

The pipeline is VLMEvalKit's ``ImageVQADataset.evaluate_heuristic``:

1. per row, a *match list* with one entry per ground-truth answer (``match_list``);
2. per row, a *hit* from the match list (``hit``): ANLS keeps ``1 - min(distance)`` and
   zeroes it below the 0.5 threshold (exactly 0.5 survives); relaxed and exact take the
   max (any answer right); VQA accuracy takes the mean of ``min(1, n/3)`` where ``n``
   counts the *other* annotators' answers equal to the prediction, so a row with a
   single ground-truth answer always scores 0, as it does in VLMEvalKit;
3. ``Overall`` = mean hit x 100; with a ``split`` column also one score per split,
   otherwise one per ``category`` (sorted).

Predictions are used as VLMEvalKit sees them: ``str(prediction)``; ANLS does not strip
the prediction before measuring its length, relaxed and exact do strip it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import JudgeLike, Record, Scored, answer_list, mean, text
from .normalize import anls_distance, process_answer, relaxed_correctness

ANLS_THRESHOLD = 0.5
METHODS = ("anls", "vqa", "relaxed", "exact")


def match_list(answers: Sequence[str], prediction: str, method: str) -> list[float]:
    """One match value per ground-truth answer (ANLS: a *distance*, lower is better)."""
    if method == "vqa":
        gts = [process_answer(a) for a in answers]
        pred = process_answer(prediction)
        out = []
        for i in range(len(gts)):
            others = sum(1 for j, g in enumerate(gts) if j != i and g == pred)
            out.append(min(1.0, others / 3))
        return out
    if method == "anls":
        return [anls_distance(a, prediction) for a in answers]
    if method == "relaxed":
        pred = prediction.strip()
        return [1.0 if relaxed_correctness(a, pred) else 0.0 for a in answers]
    if method == "exact":
        pred = prediction.strip().lower()
        return [1.0 if a.strip().lower() == pred else 0.0 for a in answers]
    raise ValueError(f"method: unknown VQA method {method!r} (use {METHODS})")


def hit(matches: Sequence[float], method: str) -> float:
    """Collapse a match list to the row's score in [0, 1]."""
    if not matches:
        return 0.0
    if method == "anls":
        similarity = 1.0 - min(matches)
        return 0.0 if similarity < ANLS_THRESHOLD else similarity
    if method in ("relaxed", "exact"):
        return float(max(matches))
    return mean(matches)


def aggregate(records: Sequence[Record], hits: Sequence[float]) -> dict[str, float]:
    """VLMEvalKit's report: Overall, then per split (if any row has one) or per category."""
    out: dict[str, float] = {}
    has_split = any("split" in r for r in records)
    if has_split:
        for sp in sorted({text(r.get("split")) for r in records}):
            sub = [h for r, h in zip(records, hits, strict=True) if text(r.get("split")) == sp]
            out[sp] = mean(sub) * 100
        out["Overall"] = mean(hits) * 100
        return out
    out["Overall"] = mean(hits) * 100
    if any("category" in r for r in records):
        for cat in sorted({text(r.get("category")) for r in records}):
            sub = [h for r, h in zip(records, hits, strict=True) if text(r.get("category")) == cat]
            out[cat] = mean(sub) * 100
    return out


def score_vqa(records: Sequence[Record], method: str) -> Scored:
    hits: list[float] = []
    samples = []
    for r in records:
        answers = answer_list(r.get("answer"))
        matches = match_list(answers, text(r.get("prediction")), method)
        h = hit(matches, method)
        hits.append(h)
        samples.append({"index": r.get("index"), "hit": h, "match": matches})
    metrics = aggregate(records, hits) if records else {}
    overall = metrics.get("Overall")
    return Scored(score=overall, metrics=metrics, samples=samples)


def anls(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """DocVQA / InfoVQA (and the understanding suite's OCR sets)."""
    return score_vqa(records, "anls")


def vqa_accuracy(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """TextVQA."""
    return score_vqa(records, "vqa")


def relaxed(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """ChartQA."""
    return score_vqa(records, "relaxed")


def exact(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """OCRVQA (and GQA): case-insensitive exact match after stripping."""
    return score_vqa(records, "exact")
