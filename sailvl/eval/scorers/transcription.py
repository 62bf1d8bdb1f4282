"""Transcription scoring: normalised edit distance and exact accuracy (OCR convention).

The understanding suite's OCR tasks (paper Appendix E: IDL-WDS, DocStruct, SynthText,
SynthDog EN/ZH) ask the model to read out *all* the text of an image, so the answer is
a transcription, not a short VQA answer. They are scored the way OCR benchmarks score
full-text output; we follow VLMEvalKit's CC-OCR document-parsing evaluator
(``vlmeval/dataset/utils/ccocr_evaluator/doc_parsing_evaluator.py``, ``eval_doc``):

1. normalise both texts: drop Markdown code fences (a model may wrap its answer in
   triple backticks), then delete every space, tab and newline, so line breaks and
   spacing do not count (the same rule covers Chinese, which has no spaces);
2. ``NED = Levenshtein(pred, gt) / max(len(pred), len(gt))`` over characters;
3. a row scores ``1 - NED``; the benchmark score is the mean x 100 (0-100, higher is
   better).

Where we define what VLMEvalKit leaves undefined: two empty texts score 1 (it divides by
zero); a row with several ground truths (a Python-list literal in ``answer``) keeps the
best one, as ANLS does; a row without a ground truth is counted (``no_reference``) and
scores 0; case is kept (OCR transcriptions are case-sensitive).
``metrics`` also reports ``NED`` (the mean distance, lower is better, as OCR papers
print it) and ``accuracy``: the percentage of rows transcribed exactly (normalised
texts equal), the "accuracy" of text-recognition benchmarks. Per-category means follow
when the TSV has a ``category`` column. Unlike ANLS there is no 0.5 threshold: a
transcription that is half right earns half, which is what a training curve needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .base import JudgeLike, Record, Scored, answer_list, is_missing, mean, text
from .normalize import levenshtein

_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_SPACE = re.compile(r"\s+")


def normalise_transcription(value: str) -> str:
    """The text a transcription is compared on: no code fences, no whitespace at all."""
    return _SPACE.sub("", _FENCE.sub("", value))


def ned(groundtruth: str, prediction: str) -> float:
    """Normalised edit distance in [0, 1] of the normalised texts (0: identical)."""
    gt, pred = normalise_transcription(groundtruth), normalise_transcription(prediction)
    longest = max(len(gt), len(pred))
    return 0.0 if longest == 0 else levenshtein(gt, pred) / longest


def transcription(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """Mean ``1 - NED`` x 100 over the rows (see the module docstring)."""
    out = Scored(score=None)
    sims: list[float] = []
    exact: list[float] = []
    by_cat: dict[str, list[float]] = {}
    for r in records:
        pred = "" if is_missing(r.get("prediction")) else str(r["prediction"])
        if is_missing(r.get("answer")):
            out.count("no_reference")  # scores 0, as the caption scorer does
            dist = 1.0
        else:
            dist = min(ned(a, pred) for a in answer_list(r.get("answer")))
        sim = 1.0 - dist
        sims.append(sim)
        exact.append(1.0 if dist == 0.0 else 0.0)
        if not is_missing(r.get("category")):
            by_cat.setdefault(text(r.get("category")), []).append(sim)
        out.samples.append({"index": r.get("index"), "hit": sim, "ned": dist})
    if records:
        out.score = mean(sims) * 100
        out.metrics = {
            "Overall": out.score,
            "NED": mean([1.0 - s for s in sims]),
            "accuracy": mean(exact) * 100,
            **{cat: mean(v) * 100 for cat, v in sorted(by_cat.items())},
        }
    return out
