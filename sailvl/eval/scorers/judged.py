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
- Captions (DetailCaps; paper Figure 7): the judge grades each caption 1-10 against
  all of the row's references at once. ``answer`` holds them: a Python-list literal is
  several references (DetailCaps has three), anything else one. One prompt shows them
  all, rather than a mean over per-reference grades, so a correct detail that only one
  annotator wrote is supported instead of being judged a hallucination by the other two.
  A reply off the 1-10 scale is asked again (up to five times); a caption still without
  a grade, or a row without any reference, is counted (``judge_failed``,
  ``no_reference``) and scores 0, as VLMEvalKit scores failed judgements. The score is
  the mean grade x 10 on 0-100; ``metrics["references"]`` counts rows by reference
  count. No judge: the benchmark is not scored.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sailvl.quality.judge import CAPTION_SCALE
from sailvl.quality.scores import parse_score

from .base import FAIL_MSG, JudgeLike, Record, Scored, answer_list, is_missing, mean, text
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
    per_refs: dict[str, int] = defaultdict(int)
    lo, hi = CAPTION_SCALE
    for r in records:
        refs = [] if is_missing(r.get("answer")) else answer_list(r.get("answer"))
        refs = [x for x in refs if x.strip()]
        grade = None
        if not refs:
            out.count("no_reference")
        else:
            per_refs[str(len(refs))] += 1
            prompt = caption_prompt(refs, text(r.get("prediction")))
            for attempt in range(RETRIES):
                reply = judge.generate(prompt, temperature=attempt * 0.5)
                grade = None if FAIL_MSG in reply else parse_score(reply, lo=lo, hi=hi)
                if grade is not None:
                    break
            if grade is None:
                out.count("judge_failed")
        grade = grade or 0.0
        grades.append(grade)
        out.samples.append({"index": r.get("index"), "hit": grade / 10})
    if records:
        out.score = mean(grades) * 10
        out.metrics = {"Overall": out.score, "references": dict(per_refs)}
    return out
