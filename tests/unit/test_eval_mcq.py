"""Multiple-choice extraction, vanilla and circular (MMBench) scoring.

INFER expectations are VLMEvalKit's ``can_infer`` outputs on the same inputs.
"""

from __future__ import annotations

import pytest

from sailvl.eval.scorers import FAIL_MSG, score_benchmark
from sailvl.eval.scorers.matching import can_infer
from sailvl.eval.scorers.mcq import mcq, mcq_circular

ABCD = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}
INFER = [
    ("B", ABCD, "B"),
    ("(C)", ABCD, "C"),
    ("The answer is D.", ABCD, "D"),
    ("b", ABCD, False),  # letters are case-sensitive; "b" is no option text either
    ("A B", ABCD, False),  # two letters: ambiguous, and "a b" contains no option text
    ("A dog", ABCD, "A"),  # the article "A" is a letter token near the end
    ("I think a dog is in the picture, so A is wrong and the answer is B", ABCD, "B"),
    ("A is the option here, of all the ones listed", ABCD, False),  # letter too early
    ("dog", ABCD, "B"),  # option text
    ("a cat and a dog", ABCD, False),  # two option texts: ambiguous
    ("Cannot determine the answer", ABCD, "Z"),
    ("Z", ABCD, "Z"),
    (FAIL_MSG, ABCD, False),
    ("The correct answer is **C** because birds fly and the others do not fly", ABCD, "C"),
    ("**B**", ABCD, "B"),
    ("E", ABCD, False),
    ("狗", {"A": "猫", "B": "狗"}, "B"),
    ("选 B", {"A": "猫", "B": "狗"}, "B"),
    ("", ABCD, False),
    ("a very long answer that mentions fish but is far longer than twice the options", ABCD, False),
]


@pytest.mark.parametrize(("answer", "choices", "expected"), INFER)
def test_can_infer(answer: str, choices: dict[str, str], expected: object) -> None:
    assert can_infer(answer, dict(choices)) == expected


def row(index: int, pred: str, answer: str, **extra: object) -> dict[str, object]:
    return {"index": str(index), "prediction": pred, "answer": answer, **ABCD, **extra}


def test_vanilla_accuracy_and_categories() -> None:
    rows = [
        row(1, "A", "A", category="coarse_perception"),
        row(2, "B", "C", category="coarse_perception"),
        row(3, "fish", "D", category="logic_reasoning"),
        row(4, "no idea", "A", category="logic_reasoning"),
    ]
    s = mcq(rows, None)
    assert s.score == pytest.approx(50.0)
    assert s.metrics["Overall"] == [0.5]  # VLMEvalKit's unit: a fraction
    assert s.metrics["CP"] == [0.5] and s.metrics["LR"] == [0.5]  # MMBench abbreviations
    assert [x["extracted"] for x in s.samples] == ["A", "B", "D", "Z"]


def test_vanilla_per_split() -> None:
    rows = [row(1, "A", "A", split="dev"), row(2, "A", "B", split="test")]
    s = mcq(rows, None)
    assert s.metrics["split"] == ["dev", "test"] and s.metrics["Overall"] == [1.0, 0.0]


class ScriptedJudge:
    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def generate(self, prompt: str, temperature: float = 0.0) -> str:
        self.prompts.append(prompt)
        return self.replies.pop(0) if self.replies else FAIL_MSG


def test_judge_resolves_unmatched_rows_and_gets_the_reference_prompt() -> None:
    judge = ScriptedJudge("garbage", "B")
    s = mcq([row(1, "it barks", "B", question="What animal?")], judge)
    assert s.score == 100.0 and s.samples[0]["how"] == "judge"
    assert (
        "Question: What animal??\nOptions: There are several options: \nA. cat\n"
        in judge.prompts[0]
    )
    assert len(judge.prompts) == 2


def test_judge_failure_counts_and_scores_wrong() -> None:
    s = mcq([row(1, "it barks", "B", question="q")], ScriptedJudge())
    assert s.score == 0.0 and s.errors == {"judge_failed": 1}


def test_chinese_question_uses_chinese_judge_prompt() -> None:
    judge = ScriptedJudge("A")
    mcq([row(1, "???", "A", question="图中是什么?")], judge)
    assert judge.prompts[0].startswith("你是一个帮助我匹配答案")


def circ(g: int, k: int, pred: str, answer: str) -> dict[str, object]:
    return row(g + k * 1_000_000, pred, answer, category="coarse_perception")


def test_circular_group_needs_every_rotation_right() -> None:
    rows = [
        circ(1, 0, "A", "A"), circ(1, 1, "B", "B"), circ(1, 2, "C", "C"), circ(1, 3, "D", "D"),
        circ(2, 0, "A", "A"), circ(2, 1, "A", "B"), circ(2, 2, "C", "C"), circ(2, 3, "D", "D"),
        circ(3, 0, "A", "A"), circ(3, 1, "hmm", "B"),
    ]  # fmt: skip
    s = mcq_circular(rows, None)
    assert [x["hit"] for x in s.samples] == [1.0, 0.0, 0.0]  # group 3: unmatched, no judge
    assert s.score == pytest.approx(100 / 3)
    assert [x["group_size"] for x in s.samples] == [4, 4, 2]


def test_circular_judge_only_for_undecided_groups() -> None:
    rows = [
        circ(1, 0, "A", "A"),
        circ(1, 1, "it barks", "B"),
        circ(2, 0, "C", "A"),
        circ(2, 1, "??", "B"),
    ]
    judge = ScriptedJudge("B")
    s = mcq_circular(rows, judge)
    assert [x["hit"] for x in s.samples] == [1.0, 0.0]
    assert len(judge.prompts) == 1  # group 2 failed at prefetch: the judge is not asked


def test_circular_orphans_and_bad_index_are_counted() -> None:
    s = mcq_circular([circ(5, 1, "A", "A"), row("x", "A", "A")], None)  # type: ignore[arg-type]
    assert s.errors == {"bad_index": 1, "circular_orphans": 1} and s.score is None


def test_mmmu_open_questions_become_two_options() -> None:
    rows = [
        {"index": "1", "prediction": "42", "answer": "42", "A": None, "B": None},
        {"index": "2", "prediction": "B", "answer": "B", "A": "x", "B": "y"},
    ]
    assert score_benchmark("mmmu", "mcq", rows).score == 100.0
    assert score_benchmark("mmstar", "mcq", rows).score == 50.0
