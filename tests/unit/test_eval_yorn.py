"""Yes/no extraction, MME, POPE, HallusionBench, OCRBench and judge-scored benchmarks.

YORN expectations are VLMEvalKit's ``YOrN_Extraction`` outputs; the aggregate numbers
are worked out by hand in the comments.
"""

from __future__ import annotations

import pytest

from sailvl.eval.scorers import FAIL_MSG, SCORERS
from sailvl.eval.scorers.judged import caption_judge, mathvista, mmvet
from sailvl.eval.scorers.ocrbench import HME, ocrbench
from sailvl.eval.scorers.yorn import hallusion, mme, pope, yesno, yorn_extract

YORN = [
    ("Yes.", "Yes"),
    ("YES!", "Yes"),
    ("No, it is not.", "No"),
    ("yes and no", "Unknown"),
    ("Yesterday", "Unknown"),
    ("是", "Unknown"),
    ("no.", "No"),
    ("(yes)", "Yes"),
    ("", "Unknown"),
    ("I'd say yes, no doubt", "Unknown"),
]


@pytest.mark.parametrize(("text", "expected"), YORN)
def test_yorn_extract(text: str, expected: str) -> None:
    assert yorn_extract(text) == expected


def yn(index: str, pred: str, answer: str, **extra: object) -> dict[str, object]:
    return {"index": index, "prediction": pred, "answer": answer, "question": "Is it?", **extra}


def test_mme_acc_plus_and_sums() -> None:
    rows = [
        yn("1", "Yes", "Yes", category="OCR", image_path="i1"),
        yn("2", "No", "No", category="OCR", image_path="i1"),
        yn("3", "Yes", "Yes", category="OCR", image_path="i2"),
        yn("4", "Yes", "No", category="OCR", image_path="i2"),
        yn("5", "No", "Yes", category="code_reasoning", image_path="i3"),
        yn("6", "Yes", "No", category="code_reasoning", image_path="i3"),
    ]
    s = mme(rows, None)
    assert s.metrics["OCR"] == pytest.approx(75 + 50)  # acc 3/4, acc+ 1/2 images
    assert s.metrics["code_reasoning"] == 0
    assert s.metrics["perception"] == pytest.approx(125) and s.metrics["reasoning"] == 0
    assert s.score == pytest.approx(125)
    assert "artwork" in s.metrics["missing_categories"]


def test_mme_answer_is_case_sensitive() -> None:
    assert mme([yn("1", "yes", "yes", category="OCR", image_path="a")], None).metrics["OCR"] == 0


def test_pope_f1_counts_multi_category_rows_once_per_category() -> None:
    rows = [
        yn("1", "yes", "Yes", category="random"),
        yn("2", "yes", "No", category="random,popular"),
        yn("3", "no", "Yes", category="popular"),
        yn("4", "no", "No", category="popular"),
    ]
    s = pope(rows, None)
    # Exploded: 5 rows, tp=1, fp=2 (row 2 twice), fn=1 -> P=1/3, R=1/2, F1=0.4.
    assert s.metrics["Overall"]["Overall"] == pytest.approx(40.0)
    assert s.metrics["Overall"]["acc"] == pytest.approx(40.0)
    assert s.metrics["Overall"]["precision"] == pytest.approx(100 / 3)
    assert s.metrics["random"]["Overall"] == pytest.approx(200 / 3)
    assert s.metrics["popular"]["Overall"] == 0.0
    assert s.score == pytest.approx(40.0)


def test_pope_no_positive_predictions_gives_zero_f1() -> None:
    s = pope([yn("1", "no", "Yes", category="random")], None)
    assert s.score == 0.0


def test_hallusion_three_accuracies() -> None:
    rows = [
        yn("VD_fig_x_0_0_0", "Yes", "Yes", category="VD", **{"l2-category": "chart"}),
        yn("VD_fig_x_0_0_1", "Yes", "No", category="VD", **{"l2-category": "chart"}),
        yn("VD_fig_x_0_1_0", "No", "No", category="VD", **{"l2-category": "chart"}),
        yn("VD_fig_x_0_1_1", "No", "No", category="VD", **{"l2-category": "chart"}),
    ]
    s = hallusion(rows, None)
    o = s.metrics["Overall"]
    assert (o["aAcc"], o["fAcc"], o["qAcc"]) == (75.0, 50.0, 50.0)
    assert s.score == pytest.approx(175 / 3)
    assert "category:VD" in s.metrics and "l2-category:chart" in s.metrics


def test_hallusion_bad_index_is_counted() -> None:
    s = hallusion([yn("nounderscores", "Yes", "Yes")], None)
    assert s.errors == {"bad_index": 1} and s.score is None


class Scripted:
    def __init__(self, *replies: str) -> None:
        self.replies, self.temps = list(replies), []

    def generate(self, prompt: str, temperature: float = 0.0) -> str:
        self.temps.append(temperature)
        return self.replies.pop(0) if self.replies else FAIL_MSG


def test_yesno_judge_only_for_unknown_with_rising_temperature() -> None:
    judge = Scripted("maybe", "Yes")
    s = yesno([yn("1", "Yes", "Yes"), yn("2", "it is", "Yes")], judge)
    assert s.score == 100.0 and judge.temps == [0.0, 0.5]


OCR_ROWS = [
    ("['Hello']", "the text says HELLO.", "Regular Text Recognition", 1),
    ("['x^2 + 1']", "x^2+1", HME, 1),  # spaces removed for handwritten maths
    ("['X^2+1']", "x^2+1", HME, 0),  # ... but case kept
    ("['a', 'cat']", "a dog", "Scene Text-centric VQA", 1),  # any answer
    ("['']", "anything", "Doc-oriented VQA", 1),  # empty answer always matches
    ("['line one line two']", "line one\nline two", "Key Information Extraction", 1),
    ("['猫']", "这是猫", "Digit String Recognition", 1),
    ("['42']", "forty two", "Digit String Recognition", 0),
]


def test_ocrbench_substring_rules_and_totals() -> None:
    rows = [
        {"index": str(i), "answer": a, "prediction": p, "category": c}
        for i, (a, p, c, _) in enumerate(OCR_ROWS)
    ]
    s = ocrbench(rows, None)
    assert [x["hit"] for x in s.samples] == [float(h) for *_, h in OCR_ROWS]
    assert s.metrics["Text Recognition"] == 2 and s.metrics[HME] == 1
    assert s.metrics["Final Score"] == 6 and s.metrics["Final Score Norm"] == 0.6
    assert s.score == pytest.approx(6 / 8 * 1000)


def test_mmvet_grades_with_retries_and_capabilities() -> None:
    rows = [
        {
            "index": "1",
            "question": "q",
            "answer": "a<AND>b",
            "prediction": "p",
            "category": "rec,ocr",
        },
        {"index": "2", "question": "q", "answer": "a", "prediction": "p", "category": "math"},
    ]
    judge = Scripted("0.5", "abc", "1.5", "0.8")
    s = mmvet(rows, judge)
    assert judge.temps == [0.0, 0.0, 0.5, 1.0]
    assert s.metrics["Overall"] == pytest.approx(65.0)
    assert s.metrics["rec"] == s.metrics["ocr"] == s.metrics["rec_ocr"] == pytest.approx(50.0)
    assert s.metrics["math"] == pytest.approx(80.0)
    assert mmvet(rows, None).score is None


def _mv(index: str, pred: str, **kw: str) -> dict[str, str]:
    return {
        "index": index,
        "question": "q",
        "prediction": pred,
        "task": "t",
        "skills": "['s']",
        **kw,
    }


def test_mathvista_prefetch_judge_and_reference_quirks() -> None:
    rows = [
        _mv("1", "The answer is (B) 8/11", question_type="multi_choice", choices="['3/11', '8/11']", answer_option="B", answer="8/11"),
        _mv("2", "14", question_type="free_form", answer_type="integer", answer="14"),
        _mv("3", "0", question_type="free_form", answer_type="integer", answer="0"),  # prefetch 0 is falsy
        _mv("4", "cat", question_type="free_form", answer_type="text", answer="cat"),  # never matches
        _mv("5", "The value is 1.5", question_type="free_form", answer_type="float", answer="1.5"),
    ]  # fmt: skip
    judge = Scripted("0", "cat", "1.5")
    s = mathvista(rows, judge)
    assert [x["hit"] for x in s.samples] == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert s.metrics["Overall"] == 80.0 and s.metrics["s"] == 80.0
    s2 = mathvista(rows, Scripted())  # judge never answers
    assert [x["hit"] for x in s2.samples] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert s2.errors == {"judge_failed": 3}


def test_caption_judge_grades_0_to_10() -> None:
    rows = [{"index": "1", "answer": "a red ball", "prediction": "a ball"}] * 2
    s = caption_judge(rows, Scripted("8", "11", "6."))
    assert s.score == pytest.approx(70.0)
    assert caption_judge(rows, None).errors == {"judge_missing": 2}


def test_every_api_scorer_is_registered() -> None:
    from sailvl.api.benchmarks import SCORERS as API_SCORERS

    assert set(API_SCORERS) == set(SCORERS)
