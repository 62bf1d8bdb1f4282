"""Scorers by name: one module per metric family, a registry keyed by the API's names.

``SCORERS[name](records, judge) -> Scored``; the names are
``sailvl.api.benchmarks.SCORERS`` (a test keeps the two in step). Pure Python: no
numpy, torch or network; the judge is whatever object is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from .base import FAIL_MSG, JudgeLike, Record, Scored, Scorer
from .judged import caption_judge, mathvista, mmvet
from .matching import can_infer, can_infer_option, can_infer_text
from .mcq import mcq, mcq_circular
from .normalize import anls_distance, process_answer, process_punctuation, relaxed_correctness
from .ocrbench import ocrbench
from .transcription import transcription
from .vqa import anls, exact, relaxed, vqa_accuracy
from .yorn import hallusion, mme, pope, yesno, yorn_extract

SCORERS: dict[str, Scorer] = {
    "anls": anls,
    "vqa": vqa_accuracy,
    "relaxed": relaxed,
    "exact": exact,
    "ocrbench": ocrbench,
    "mcq": mcq,
    "mcq_circular": mcq_circular,
    "mme": mme,
    "pope": pope,
    "hallusion": hallusion,
    "yesno": yesno,
    "judge_mmvet": mmvet,
    "judge_mathvista": mathvista,
    "caption_judge": caption_judge,
    "transcription": transcription,
}

JUDGED = frozenset({"judge_mmvet", "judge_mathvista", "caption_judge"})
"""Scorers that produce no score without a judge."""


def score_benchmark(
    benchmark: str, scorer: str, records: Sequence[Record], judge: JudgeLike | None = None
) -> Scored:
    """Score one benchmark's records with the named scorer.

    ``benchmark`` selects dataset-specific rules VLMEvalKit applies by name (MMMU's
    open questions become two-option questions).
    """
    if scorer not in SCORERS:
        raise ValueError(f"scorer: unknown scorer {scorer!r} (known: {sorted(SCORERS)})")
    fn = SCORERS[scorer]
    if scorer == "mcq" and "mmmu" in benchmark.lower():
        fn = partial(mcq, mmmu=True)
    return fn(records, judge)


__all__ = [
    "FAIL_MSG",
    "JUDGED",
    "SCORERS",
    "JudgeLike",
    "Record",
    "Scored",
    "anls_distance",
    "can_infer",
    "can_infer_option",
    "can_infer_text",
    "process_answer",
    "process_punctuation",
    "relaxed_correctness",
    "score_benchmark",
    "yorn_extract",
]
