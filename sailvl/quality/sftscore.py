"""One SFT sample through the Figure 10 judge: three scores, or one failure reason.

The scoring job (`sailvl data score`, `sailvl.data.score`) asks a judge model to rate
each sample on the paper's criteria (task difficulty, data complexity, image-text
relevance; each an integer 1-5, `sailvl.quality.judge.SFT_SCORE_PROMPT`). A score that
reaches the dataset must be one the judge gave for that criterion; anything else is a
counted failure with its reason, never a guess and never an exception:

- `ok`: a JSON object with all three criteria, each a number in [1, 5];
- `refusal`: the judge declined ("I'm sorry, I cannot ...") and gave no JSON;
- `non_json`: no JSON object in the reply (prose, "Difficulty: 3" lines, a bare number):
  the prompt asks for JSON only, and a key found in prose cannot be told from a number
  the judge merely mentions;
- `missing_field`: JSON, but a criterion is absent;
- `out_of_range`: a criterion's value is not a number in [1, 5] (0, 7, "high", true);
- `timeout`: the request timed out on every attempt;
- `judge_error`: the endpoint failed otherwise after its retries (HTTP 5xx, 4xx,
  connection refused, malformed chat-completions body);
- `bad_row`: the input row itself is unusable (the dataset reader refused it) or has
  no conversation to judge; no request is made.

`timeout` and `judge_error` say nothing about the sample, only about the endpoint:
they are TRANSIENT, and the job refuses to commit a shard with too many of them (the
rerun asks again). The other reasons are verdicts about the sample and are committed.
"""

from __future__ import annotations

import re
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sailvl.quality.compare import _REFUSAL
from sailvl.quality.judge import PROMPT_VERSION, sft_score_prompt
from sailvl.quality.scores import _json_candidates, normalise
from sailvl.runtime.openai_client import ChatError, image_part

CRITERIA = ("difficulty", "complexity", "relevance")
SCALE = (1.0, 5.0)
OK = "ok"
TRANSIENT = ("timeout", "judge_error")
REASONS = ("bad_row", "refusal", "non_json", "missing_field", "out_of_range", *TRANSIENT)
SCORE_PROMPT_VERSION = PROMPT_VERSION
MAX_IMAGES = 4  # images sent per request; the judge rates the sample, not every tile

Ask = Callable[[Any], str]  # user message content -> reply; raises ChatError on failure


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The three scores (status `ok`) or none (status = a failure reason)."""

    status: str
    scores: dict[str, float] | None = None
    reply: str = ""  # the judge's raw reply (or the error), kept for audit
    detail: str = ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
        return float(value)
    return None


def parse_reply(reply: str) -> Verdict:
    """The verdict of one judge reply (see the module docstring for the reasons)."""
    objs = _json_candidates(normalise(reply))
    if not objs:
        status = "refusal" if _REFUSAL.search(reply) else "non_json"
        return Verdict(status=status, reply=reply)
    keyed = [{str(k).strip().casefold(): v for k, v in o.items()} for o in objs]
    obj = next((o for o in keyed if all(c in o for c in CRITERIA)), None)
    if obj is None:
        have = sorted({k for o in keyed for k in o} & set(CRITERIA))
        missing = [c for c in CRITERIA if c not in have]
        return Verdict(status="missing_field", reply=reply, detail=f"missing {missing}")
    scores: dict[str, float] = {}
    lo, hi = SCALE
    for name in CRITERIA:
        value = _number(obj[name])
        if value is None or not lo <= value <= hi:
            detail = f"{name}: {obj[name]!r} is not a number in [{lo:g}, {hi:g}]"
            return Verdict(status="out_of_range", reply=reply, detail=detail)
        scores[name] = value
    return Verdict(status=OK, scores=scores, reply=reply)


def _failure(err: ChatError) -> str:
    """`timeout` when the last attempt timed out, else `judge_error`."""
    cause: BaseException | None = err.__cause__
    if isinstance(cause, urllib.error.URLError) and not isinstance(cause, urllib.error.HTTPError):
        cause = cause.reason if isinstance(cause.reason, BaseException) else cause
    return "timeout" if isinstance(cause, TimeoutError) else "judge_error"


def content(turns: Sequence[dict[str, str]], images: Sequence[bytes]) -> Any:
    """The user message: the Figure 10 prompt, then up to MAX_IMAGES images inline."""
    text = sft_score_prompt(turns)
    if not images:
        return text
    return [{"type": "text", "text": text}, *(image_part(b) for b in images[:MAX_IMAGES])]


def judge_sample(ask: Ask, sample: dict[str, Any] | None) -> Verdict:
    """Score one dataset sample (None: a row the reader refused). Never raises for a
    judge problem: every failure is a Verdict with its reason."""
    if sample is None:
        return Verdict(status="bad_row", detail="the dataset reader refused the row")
    turns = sample.get("conversations") or []
    if not any(t.get("content", "").strip() for t in turns):
        return Verdict(status="bad_row", detail="no conversation to judge")
    try:
        reply = ask(content(turns, sample.get("images") or []))
    except ChatError as err:
        return Verdict(status=_failure(err), reply=str(err)[:500])
    return parse_reply(reply)


class Table2:
    """Table 2 style means, accumulated row by row (bounded memory over any dataset):
    per collection (the `source` column) the samples, how many were scored, and the mean
    of each criterion over the scored ones. Rows carry `source`, `score_status` and
    `score_<criterion>` (the scored dataset's columns)."""

    def __init__(self) -> None:
        self.count: dict[str, list[int]] = {}
        self.sums: dict[str, dict[str, float]] = {}
        self.failed: Counter[str] = Counter({r: 0 for r in REASONS})

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            src = row.get("source") or ""
            n = self.count.setdefault(src, [0, 0])
            n[0] += 1
            if row.get("score_status") != OK:
                self.failed[str(row.get("score_status"))] += 1
                continue
            n[1] += 1
            acc = self.sums.setdefault(src, dict.fromkeys(CRITERIA, 0.0))
            for crit in CRITERIA:
                acc[crit] += float(row[f"score_{crit}"])

    def state(self) -> dict[str, Any]:
        """The accumulated sums as JSON (a shard's part, merged later by `merge`)."""
        return {"count": self.count, "sums": self.sums, "failed": dict(self.failed)}

    def merge(self, state: dict[str, Any]) -> None:
        """Add another accumulator's `state()`."""
        for src, (samples, scored) in state["count"].items():
            n = self.count.setdefault(src, [0, 0])
            n[0], n[1] = n[0] + samples, n[1] + scored
        for src, sums in state["sums"].items():
            acc = self.sums.setdefault(src, dict.fromkeys(CRITERIA, 0.0))
            for crit in CRITERIA:
                acc[crit] += sums[crit]
        self.failed.update(state["failed"])

    def result(self) -> dict[str, dict[str, Any]]:
        return {
            src: {
                "samples": n[0],
                "scored": n[1],
                **{k: round(v / n[1], 4) for k, v in self.sums.get(src, {}).items()},
            }
            for src, n in sorted(self.count.items())
        }


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """`Table2.result()` as text: one line per collection, means to two decimals."""
    crit = " ".join(f"{c:>11}" for c in CRITERIA)
    lines = [f"{'collection':<28} {'samples':>8} {'scored':>8} {crit}"]
    for src, row in table.items():
        means = " ".join(f"{row[c]:>11.2f}" if c in row else f"{'-':>11}" for c in CRITERIA)
        lines.append(f"{src or '(none)':<28} {row['samples']:>8} {row['scored']:>8} {means}")
    return "\n".join(lines)
