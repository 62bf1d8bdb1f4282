"""VQA answer normalisation and string metrics, table-driven against VLMEvalKit's values.

Every expected value below was produced by VLMEvalKit's own functions
(vlmeval/dataset/utils/vqa_eval.py, vlmeval/smp/misc.py) on the same input.
"""

from __future__ import annotations

import pytest

from sailvl.eval.scorers.normalize import (
    anls_distance,
    levenshtein,
    process_answer,
    process_punctuation,
    relaxed_correctness,
)
from sailvl.eval.scorers.vqa import hit, match_list

PUNCT = [
    ("hello, world", "hello world"),  # ", " present: comma deleted
    ("a,b", "a b"),  # no space next to it: comma becomes a space
    ("1,000", "1000"),  # digit-comma-digit anywhere: every listed mark deleted
    ("1,000 (approx)", "1000 approx"),
    ("(yes)", " yes "),
    ("yes!", "yes "),
    ("end.", "end"),  # lone period removed
    ("3.14", "3.14"),  # decimal point kept
    ("e.g.", "eg"),
    ("don't", "don't"),  # apostrophe kept
    ("12:30", "12:30"),  # colon kept
    ("a" + "." * 40, "a" + "." * 8),  # only 32 periods removed (count=re.UNICODE)
    ("猫。", "猫。"),  # CJK punctuation untouched
]


@pytest.mark.parametrize(("text", "expected"), PUNCT)
def test_process_punctuation(text: str, expected: str) -> None:
    assert process_punctuation(text) == expected


ANSWERS = [
    ("The Two dogs.", "2 dogs"),
    ("an apple", "apple"),
    ("A", ""),  # a lone article disappears
    ("none", "0"),
    ("Ten", "10"),
    ("eleven", "eleven"),  # only zero..ten are mapped
    ("dont", "don't"),
    ("Im", "im"),  # the table's capitalised keys never match lower-cased words
    ("  yes\tsir\n", "yes sir"),
    ("twenty-one", "twenty 1"),  # hyphen becomes a space, then "one" -> "1"
    ("1,234.5", "1234.5"),
    ("红色", "红色"),
    ("What's up?", "what's up"),
]


@pytest.mark.parametrize(("text", "expected"), ANSWERS)
def test_process_answer(text: str, expected: str) -> None:
    assert process_answer(text) == expected


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("猫狗", "猫", 1)],
)
def test_levenshtein(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d == levenshtein(b, a)


ANLS = [
    ("Hello", "hello", 0.0),
    ("Hello World", "  hello   world ", 0.0),  # whitespace collapsed before distance
    ("abcd", "abce", 0.25),
    ("", "", 0.0),
    ("abc", "", 1.0),
    ("straße", "strasse", 2 / 7),  # length after upper(): "STRASSE" = 7
    ("猫在桌子上", "猫在桌上", 1 / 5),
]


@pytest.mark.parametrize(("gt", "pred", "dist"), ANLS)
def test_anls_distance(gt: str, pred: str, dist: float) -> None:
    assert anls_distance(gt, pred) == pytest.approx(dist)


@pytest.mark.parametrize(
    ("answers", "pred", "expected"),
    [
        (["abcd"], "abce", 0.75),
        (["abcdef"], "abcxyz", 0.5),  # exactly at the threshold: kept
        (["abcdefg"], "abcxyzw", 0.0),  # 3/7 similarity < 0.5: zero
        (["wrong", "Hello"], "hello", 1.0),  # best answer wins
        (["x"], "", 0.0),
    ],
)
def test_anls_hit(answers: list[str], pred: str, expected: float) -> None:
    assert hit(match_list(answers, pred, "anls"), "anls") == pytest.approx(expected)


RELAXED = [
    ("100", "105", True),  # exactly 5%
    ("100", "105.01", False),
    ("100", "95", True),
    ("100", "94.99", False),
    ("50%", "0.5", True),  # percent sign divides by 100
    ("50%", "52%", True),
    ("50%", "53%", False),
    ("0.5", "50", False),
    ("0", "0.0", False),  # zero target: string comparison
    ("0", "0", True),
    ("Yes", "yes", True),  # non-numeric: case-insensitive exact
    ("New York", "new york city", False),
    ("-10", "-10.4", True),
    ("1,000", "1000", False),  # comma: not a number, strings differ
    ("1e3", "1000", True),
]


@pytest.mark.parametrize(("target", "pred", "ok"), RELAXED)
def test_relaxed_correctness(target: str, pred: str, ok: bool) -> None:
    assert relaxed_correctness(target, pred) is ok


VQA = [
    (["two"] * 10, "2", 1.0),
    (["2", "2", "3", "3", "3", "4", "4", "4", "4", "4"], "2", 0.6),  # (2 x 1/3 + 8 x 2/3) / 10
    (["yes"], "yes", 0.0),  # a single answer has no "other" annotators
    (["cat", "cat", "cat", "dog"], "A cat.", 0.75),
    (["cat", "cat", "dog", "dog"], "cat", 0.5),  # (2 x 1/3 + 2 x 2/3) / 4
]


@pytest.mark.parametrize(("answers", "pred", "expected"), VQA)
def test_vqa_accuracy(answers: list[str], pred: str, expected: float) -> None:
    assert hit(match_list(answers, pred, "vqa"), "vqa") == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answers", "pred", "expected"),
    [(["Harry Potter"], " harry potter ", 1.0), (["A", "B"], "b", 1.0), (["A"], "A.", 0.0)],
)
def test_exact(answers: list[str], pred: str, expected: float) -> None:
    assert hit(match_list(answers, pred, "exact"), "exact") == expected
