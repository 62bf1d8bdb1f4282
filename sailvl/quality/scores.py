"""Robust extraction of numeric scores from judge replies.

Judges answer in many shapes: bare numbers, "Score: 4/5", "**Rating**: 4 out of 5",
JSON (possibly inside a ```json fence, with single quotes or trailing commas),
fullwidth digits and colons from Chinese models ("评分：４分"), Chinese numerals
("四分"), or prose that mentions other numbers ("3 people ... overall 4"). The parser
tries, in order, the most specific form first:

1. a JSON object holding the wanted key (case-insensitive; synonyms allowed);
2. `key: value` with an optional "/ N" or "out of N" denominator;
3. any "V/N" or "V out of N" fraction (when exactly one kind of value appears);
4. the last standalone number inside the scale.

A value given over a different denominator (8/10 on a 1-5 scale) is rescaled; a value
outside the scale after that is rejected. None means "no score found" (callers count it
as a parse failure rather than inventing a score).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

_ZH_NUM = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_NUM = r"(\d+(?:\.\d+)?)"
_DEN = r"(?:\s*(?:/|out\s+of|of|分之)\s*(\d+(?:\.\d+)?))?"


def normalise(text: str) -> str:
    """NFKC (fullwidth digits and punctuation to ASCII), markdown emphasis removed,
    standalone Chinese numerals before 分 turned into digits."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[*_`]+", "", text)
    return re.sub(
        r"([零一二两三四五六七八九十])(?=\s*分)", lambda m: str(_ZH_NUM[m.group(1)]), text
    )


def _in_scale(value: float, den: float | None, lo: float, hi: float) -> float | None:
    if den:
        if den <= 0:
            return None
        if den != hi:
            value = value * hi / den
    return value if lo <= value <= hi else None


def _json_candidates(text: str) -> list[dict[str, Any]]:
    out = []
    for block in re.findall(r"\{[^{}]*\}", text, flags=re.S):
        for attempt in (block, re.sub(r",\s*}", "}", block.replace("'", '"'))):
            try:
                obj = json.loads(attempt)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
                break
    return out


DEFAULT_KEYS = ("score", "rating", "overall", "评分", "得分", "分数")


def _keyed(
    norm: str, objs: list[dict[str, Any]], keys: Sequence[str], lo: float, hi: float
) -> float | None:
    """Steps 1-2: a JSON key, then `key: value[/N]` in the text."""
    wanted = [k.casefold() for k in keys]
    for obj in objs:
        for k, v in obj.items():
            if str(k).casefold() not in wanted:
                continue
            try:
                val = _in_scale(float(str(v).split("/")[0]), None, lo, hi)
            except ValueError:
                continue
            if val is not None:
                return val
    key_re = "|".join(re.escape(k) for k in keys)
    for m in re.finditer(
        rf"(?:{key_re})\s*[\"']?\s*(?:is|[:=：-])?\s*[\"']?\s*{_NUM}{_DEN}", norm, flags=re.I
    ):
        val = _in_scale(float(m.group(1)), float(m.group(2)) if m.group(2) else None, lo, hi)
        if val is not None:
            return val
    return None


def parse_score(
    text: str | None, keys: Sequence[str] = DEFAULT_KEYS, lo: float = 1, hi: float = 5
) -> float | None:
    """The score for any of `keys` in `text`, on the scale [lo, hi], or None."""
    if not text:
        return None
    norm = normalise(text)
    val = _keyed(norm, _json_candidates(norm), keys, lo, hi)
    if val is not None:
        return val
    fracs = re.findall(rf"{_NUM}\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?)", norm, flags=re.I)
    vals = {_in_scale(float(v), float(d), lo, hi) for v, d in fracs}
    vals.discard(None)
    if len(vals) == 1:
        return vals.pop()
    nums = [float(x) for x in re.findall(r"(?<![\d.])(\d+(?:\.\d+)?)(?!\d|\.\d)", norm)]
    nums = [x for x in nums if lo <= x <= hi]
    return nums[-1] if nums else None


def parse_scores(
    text: str | None, fields: dict[str, Sequence[str]], lo: float = 1, hi: float = 5
) -> dict[str, float | None]:
    """Several named scores from one reply: {name: score for any of its synonyms}.

    Only the key-based steps (1-2) are used per field: with several scores in one reply
    a bare number cannot be told apart, so a missing field is None, not a guess."""
    if not text:
        return dict.fromkeys(fields)
    norm = normalise(text)
    objs = _json_candidates(norm)
    return {name: _keyed(norm, objs, syn, lo, hi) for name, syn in fields.items()}
