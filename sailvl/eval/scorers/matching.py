"""Multiple-choice answer extraction, behaving as VLMEvalKit's ``matching_util.py``.

``can_infer(answer, choices)`` first looks for an option *letter*, then for option *text*:

- letter (``can_infer_option``): an API failure message gives no answer; a known refusal
  gives ``Z``. Otherwise the characters ``.()[],:;!*#{}`` become spaces and the text is
  split on whitespace. If exactly one distinct option letter appears as a token, it is
  the answer provided its first occurrence is among the last five tokens (an ``A`` early
  in a long sentence is more likely the article). With no option letter but a ``Z``
  token, the answer is ``Z``. Failing that, a phrase such as "the correct answer is B"
  (case-insensitive, ``**bold**`` allowed, letters A-D only) decides.
- text (``can_infer_text``): if the lower-cased answer is at most twice as long as all
  option texts together, and exactly one option's lower-cased text occurs in it, that
  option is the answer. Two options matching (ambiguous) gives no answer.

``False`` means "could not infer", as in VLMEvalKit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .base import FAIL_MSG

_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_VERBOSE = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([ABCD])\**", re.IGNORECASE)


def can_infer_option(answer: str, choices: Mapping[str, object]) -> str | bool:
    """Option letter named in ``answer``, ``'Z'`` for a refusal, else ``False``."""
    if "Failed to obtain answer via API" in answer:
        return False
    if any(refusal in answer for refusal in _REFUSALS):
        return "Z"
    tokens = answer.translate(_SEPARATORS).split()
    present = [c for c in choices if c in tokens]
    if len(present) == 1:
        letter = present[0]
        if tokens.index(letter) > len(tokens) - 5:
            return letter
    elif not present and "Z" in tokens:
        return "Z"
    m = _VERBOSE.search(answer)
    if m and m.group(1).upper() in choices:
        return m.group(1).upper()
    return False


def can_infer_text(answer: str, choices: Mapping[str, object]) -> str | bool:
    """The single option whose text occurs in ``answer`` (case-insensitive), else False."""
    lowered = answer.lower()
    if len(lowered) > 2 * sum(len(str(v)) for v in choices.values()):
        return False
    found = [k for k, v in choices.items() if str(v).lower() in lowered]
    return found[0] if len(found) == 1 else False


def can_infer(answer: object, choices: Mapping[str, object]) -> str | bool:
    """Letter first, then option text; ``False`` when neither decides."""
    answer = str(answer)
    letter = can_infer_option(answer, choices)
    return letter if letter else can_infer_text(answer, choices)


__all__ = ["FAIL_MSG", "can_infer", "can_infer_option", "can_infer_text"]
