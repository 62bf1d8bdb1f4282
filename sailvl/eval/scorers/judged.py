"""Judge-scored benchmarks: MMVet, MathVista (answer extraction), detailed captions.

- MMVet (VLMEvalKit ``MMVet_auxeval``/``MMVet_acc``): the judge completes a table row
  with a correctness in [0, 1]; up to five replies (temperature 0, 0.5, 1, ...) until
  one parses as a float within range, else 0. Scores are averaged overall, per
  capability (``rec ocr know gen spat math`` occurring in the category cell) and per
  full category (commas become underscores), x100.
- MathVista (``MathVista_auxeval``/``post_check``): a prediction is first checked
  without the judge (``prefetch``); otherwise the judge extracts the answer. Multiple
  choice compares ``can_infer`` over the ``choices`` list with ``answer_option``;
  integer and float answers compare ``int()``/``float()`` conversions; for every other
  answer type VLMEvalKit compares ``str(None)`` with the answer, so those rows only
  count when the answer is literally "None". We keep that, so numbers stay comparable.
  Without a judge the raw prediction stands in for the extraction (counted).
- Captions: the judge grades each caption 0-10 against the reference (``answer``);
  the score is the mean grade x 10. No judge: the benchmark is not scored.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .base import FAIL_MSG, JudgeLike, Record, Scored, mean, text
from .matching import can_infer
from .prompts_judge import caption_prompt, mathvista_prompt, mmvet_prompt

RETRIES = 5
MMVET_CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def mmvet_grade(record: Record, judge: JudgeLike) -> tuple[float, bool]:
    """(grade in [0, 1], whether the judge produced one)."""
    prompt = mmvet_prompt(
        text(record.get("question")), text(record.get("answer")), text(record.get("prediction"))
    )
    for attempt in range(RETRIES):
        value = _float(judge.generate(prompt, temperature=attempt * 0.5))
        if value is not None and not (value < 0 or value > 1):
            return value, True
    return 0.0, False


def mmvet(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    out = Scored(score=None)
    if judge is None:
        out.count("judge_missing", len(records))
        return out
    tot: dict[str, int] = defaultdict(int)
    total: dict[str, float] = defaultdict(float)
    for r in records:
        grade, ok = mmvet_grade(r, judge)
        if not ok:
            out.count("judge_failed")
        cat = text(r.get("category"))
        for key in [c for c in MMVET_CAPABILITIES if c in cat] + ["Overall", cat.replace(",", "_")]:
            tot[key] += 1
            total[key] += grade
        out.samples.append({"index": r.get("index"), "hit": grade})
    out.metrics = {k: total[k] / tot[k] * 100 for k in tot}
    if records:
        out.score = out.metrics["Overall"]
    return out


def mathvista_check(record: Record, response: Any, prefetch: bool) -> Any:
    """VLMEvalKit ``post_check``: the matched value (prefetch) or True, else False."""
    res: Any = None
    ans: Any = record.get("answer")
    try:
        if text(record.get("question_type")) == "multi_choice":
            ans = record.get("answer_option")
            options = ast.literal_eval(text(record.get("choices")))
            res = can_infer(response, {chr(65 + i): v for i, v in enumerate(options)})
            if prefetch:
                return res
        elif text(record.get("answer_type")) == "integer":
            res = int(response)
            ans = int(text(record.get("answer")))
        elif text(record.get("answer_type")) == "float":
            res = float(response)
            ans = float(text(record.get("answer")))
        else:
            res, ans = str(res), str(ans)
    except (ValueError, SyntaxError):
        pass
    if res == ans:
        return res if prefetch else True
    return False


def mathvista(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    out = Scored(score=None)
    tot: dict[str, int] = defaultdict(int)
    hit: dict[str, int] = defaultdict(int)
    for r in records:
        pred = text(r.get("prediction"))
        fetched = mathvista_check(r, pred, prefetch=True)
        if fetched:
            res = fetched
        elif judge is None:
            out.count("judge_missing")
            res = pred
        else:
            res = ""
            prompt = mathvista_prompt(text(r.get("question")), pred)
            for attempt in range(RETRIES):
                reply = judge.generate(prompt, temperature=attempt * 0.5)
                if FAIL_MSG not in reply:
                    res = reply
                    break
            else:
                out.count("judge_failed")
        ok = bool(mathvista_check(r, res, prefetch=False))
        keys = ["Overall", text(r.get("task")), *_skills(r.get("skills"))]
        for k in keys:
            tot[k] += 1
            hit[k] += ok
        out.samples.append({"index": r.get("index"), "hit": float(ok), "extracted": str(res)})
    out.metrics = {k: hit[k] / tot[k] * 100 for k in tot}
    if records:
        out.score = out.metrics["Overall"]
    return out


def _skills(cell: Any) -> list[str]:
    try:
        value = ast.literal_eval(text(cell))
    except (ValueError, SyntaxError):
        return [text(cell)]
    return [str(v) for v in value] if isinstance(value, list | tuple) else [text(cell)]


def caption_judge(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    out = Scored(score=None)
    if judge is None:
        out.count("judge_missing", len(records))
        return out
    grades = []
    for r in records:
        prompt = caption_prompt(text(r.get("answer")), text(r.get("prediction")))
        grade = None
        for attempt in range(RETRIES):
            reply = judge.generate(prompt, temperature=attempt * 0.5).strip()
            value = _float(reply.split()[0].rstrip(".")) if reply else None
            if value is not None and 0 <= value <= 10:
                grade = value
                break
        if grade is None:
            out.count("judge_failed")
            grade = 0.0
        grades.append(grade)
        out.samples.append({"index": r.get("index"), "hit": grade / 10})
    if records:
        out.score = mean(grades) * 10
        out.metrics = {"Overall": out.score}
    return out
