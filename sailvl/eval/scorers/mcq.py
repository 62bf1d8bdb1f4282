"""Multiple-choice scoring: vanilla and MMBench circular evaluation (VLMEvalKit rules).

Extraction per row (``extract_option``): :func:`can_infer` on the prediction; if that
fails and a judge is configured, the judge gets VLMEvalKit's matching prompt (the
Chinese one when the question contains CJK characters) up to three times and its reply
goes through ``can_infer`` again; without a judge the row answers ``Z`` (wrong).
VLMEvalKit picks a *random* option after three failed judge replies; we answer ``Z``
instead, so reruns agree and a broken judge never earns points by luck.

Circular evaluation (MMBench): rows whose ``index`` modulo 1e6 is the same form a group
(the original question and its option rotations); the row with ``index == g_index`` is
the group's representative. A group scores 1 only if every row is answered correctly.
Rows are first answered by ``can_infer`` alone; one wrong prefetched row fails the
group at once, so the judge is only asked about groups that are still undecided.

Report (``report_acc``): ``Overall`` = mean hit (a fraction, VLMEvalKit's unit) per
split, then per ``l2-category`` and ``category`` with MMBench's abbreviations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from .base import FAIL_MSG, JudgeLike, Record, Scored, choices_of, is_missing, mean, text
from .matching import can_infer
from .prompts_judge import mcq_match_prompt

MMB_ABBRS = {
    "coarse_perception": "CP",
    "finegrained_perception (instance-level)": "FP-S",
    "finegrained_perception (cross-instance)": "FP-C",
    "logic_reasoning": "LR",
    "relation_reasoning": "RR",
    "attribute_reasoning": "AR",
}
JUDGE_RETRIES = 3
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def extract_option(record: Record, judge: JudgeLike | None) -> tuple[str, str]:
    """(option letter or 'Z', how it was found)."""
    choices = choices_of(record)
    pred = text(record.get("prediction"))
    found = can_infer(pred, choices)
    if found:
        return str(found), "prefetch"
    if judge is None:
        return "Z", "no_match"
    prompt = mcq_match_prompt(text(record.get("question")), choices, pred)
    for _ in range(JUDGE_RETRIES):
        reply = judge.generate(prompt)
        if FAIL_MSG in reply:
            continue
        found = can_infer(reply, choices)
        if found:
            return str(found), "judge"
    return "Z", "judge_failed"


def report_acc(records: Sequence[Record], hits: Sequence[float]) -> dict[str, object]:
    """VLMEvalKit ``report_acc``: {split: [...], Overall: [...], <ability>: [...]}."""
    splits = sorted({text(r.get("split")) if "split" in r else "none" for r in records})

    def split_of(r: Record) -> str:
        return text(r.get("split")) if "split" in r else "none"

    res: dict[str, object] = {"split": splits}
    res["Overall"] = [
        mean([h for r, h in zip(records, hits, strict=True) if split_of(r) == sp]) for sp in splits
    ]
    for group in ("l2-category", "category"):
        if not any(group in r for r in records):
            continue
        for ability in sorted({text(r.get(group)) for r in records}):
            name = MMB_ABBRS.get(ability, ability)
            res[name] = [
                mean(
                    [
                        h
                        for r, h in zip(records, hits, strict=True)
                        if text(r.get(group)) == ability and split_of(r) == sp
                    ]
                )
                for sp in splits
            ]
    return res


def mmmu_preproc(record: Record) -> Record:
    """MMMU open questions become two-option questions (VLMEvalKit ``MMMU_preproc``).

    A row without option ``A`` gets ``A`` = its answer and ``B`` = "Other Answers"; every
    MMMU answer that is not a capital letter is then expected to be ``A``.
    """
    r = dict(record)
    if is_missing(r.get("A")):
        r["A"], r["B"] = r.get("answer"), "Other Answers"
    if text(r.get("answer")) not in _LETTERS:
        r["answer"] = "A"
    return r


def mcq(records: Sequence[Record], judge: JudgeLike | None = None, *, mmmu: bool = False) -> Scored:
    """Vanilla multiple choice: one row, one question (``mmmu``: open questions too)."""
    out = Scored(score=None)
    hits = []
    if mmmu:
        records = [mmmu_preproc(r) for r in records]
    for r in records:
        opt, how = extract_option(r, judge)
        if how == "judge_failed":
            out.count("judge_failed")
        gt = text(r.get("answer"))
        h = 1.0 if opt == gt else 0.0
        hits.append(h)
        out.samples.append({"index": r.get("index"), "hit": h, "extracted": opt, "how": how})
    if records:
        out.metrics = report_acc(records, hits)
        out.score = mean(hits) * 100
    return out


def _as_int(value: object) -> int | None:
    try:
        return int(float(text(value)))
    except ValueError:
        return None


def mcq_circular(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """MMBench circular evaluation: a question counts only if all its rotations are right."""
    out = Scored(score=None)
    groups: dict[int, list[Record]] = defaultdict(list)
    mains: list[tuple[int, Record]] = []
    for r in records:
        idx = _as_int(r.get("index"))
        if idx is None:
            out.count("bad_index")
            continue
        g = _as_int(r.get("g_index")) if not is_missing(r.get("g_index")) else idx % 1_000_000
        if g is None:
            out.count("bad_index")
            continue
        groups[g].append(r)
        if idx == g:
            mains.append((g, r))
    kept: list[Record] = []
    hits: list[float] = []
    for g, main in mains:
        h, log = _circular_group(groups[g], judge)
        if log == "judge_failed":
            out.count("judge_failed")
        kept.append(main)
        hits.append(h)
        out.samples.append({"index": main.get("index"), "hit": h, "group_size": len(groups[g])})
    orphans = sum(len(rows) for g, rows in groups.items() if g not in {m for m, _ in mains})
    if orphans:
        out.count("circular_orphans", orphans)
    if kept:
        out.metrics = report_acc(kept, hits)
        out.score = mean(hits) * 100
    return out


def _circular_group(rows: Sequence[Record], judge: JudgeLike | None) -> tuple[float, str]:
    gts = [text(r.get("answer")) for r in rows]
    preds: list[str | bool] = []
    for r, gt in zip(rows, gts, strict=True):
        p = can_infer(text(r.get("prediction")), choices_of(r))
        if p and p != gt:
            return 0.0, "prefetch_wrong"
        preds.append(p)
    if all(p == g for p, g in zip(preds, gts, strict=True)):
        return 1.0, "prefetch"
    if judge is None:
        return 0.0, "no_match"
    for r, p, gt in zip(rows, preds, gts, strict=True):
        if p:
            continue
        opt, how = extract_option(r, judge)
        if opt != gt:
            return 0.0, how if how == "judge_failed" else "judge_wrong"
    return 1.0, "judge"
