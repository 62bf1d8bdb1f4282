"""OCRBench: substring matching over ten categories, a 1000-point total (VLMEvalKit).

A row scores 1 when any of its answers (a Python list literal in the ``answer`` cell)
occurs in the prediction. Both sides are stripped and newlines become spaces; for
"Handwritten Mathematical Expression Recognition" spaces are then removed and case is
kept, for every other category both are lower-cased. An empty answer therefore always
matches, as in VLMEvalKit. The five reported groups fold the six text-recognition
categories into "Text Recognition"; ``Final Score`` is the raw count (out of 1000 on
the full benchmark) and ``Final Score Norm`` is that count / 10. The headline ``score``
is rows right x 1000 / rows: VLMEvalKit's ``Final Score`` on the full 1000 rows, and
still on the 0-1000 scale for a subset.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import JudgeLike, Record, Scored, answer_list, text

HME = "Handwritten Mathematical Expression Recognition"
TEXT_RECOGNITION = (
    "Regular Text Recognition",
    "Irregular Text Recognition",
    "Artistic Text Recognition",
    "Handwriting Recognition",
    "Digit String Recognition",
    "Non-Semantic Text Recognition",
)
OTHER = ("Scene Text-centric VQA", "Doc-oriented VQA", "Key Information Extraction", HME)
CATEGORIES = (*TEXT_RECOGNITION, *OTHER)


def ocrbench_hit(answers: Sequence[str], prediction: str, category: str) -> bool:
    if category == HME:
        pred = prediction.strip().replace("\n", " ").replace(" ", "")
        return any(a.strip().replace("\n", " ").replace(" ", "") in pred for a in answers)
    pred = prediction.lower().strip().replace("\n", " ")
    return any(a.lower().strip().replace("\n", " ") in pred for a in answers)


def ocrbench(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    out = Scored(score=None)
    counts = dict.fromkeys(CATEGORIES, 0)
    for r in records:
        category = text(r.get("category"))
        if category not in counts:
            out.count("unknown_category")
        h = ocrbench_hit(answer_list(r.get("answer")), text(r.get("prediction")), category)
        if h and category in counts:
            counts[category] += 1
        out.samples.append({"index": r.get("index"), "hit": float(h)})
    final = {"Text Recognition": sum(counts[c] for c in TEXT_RECOGNITION)}
    final.update({c: counts[c] for c in OTHER})
    total = sum(final.values())
    out.metrics = {**final, "Final Score": total, "Final Score Norm": total / 10}
    if records:
        out.score = 1000.0 * sum(s["hit"] for s in out.samples) / len(records)
    return out
