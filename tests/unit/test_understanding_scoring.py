"""The understanding suite as Appendix E defines it: the tasks, transcription scoring
(normalised edit distance, VLMEvalKit's CC-OCR convention), a seeded random subset."""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import pytest

from sailvl.api.benchmarks import BENCHMARKS, SUITES, UNDERSTANDING_SUBSET
from sailvl.eval.prompts import build_prompt
from sailvl.eval.scorers import SCORERS
from sailvl.eval.scorers.normalize import levenshtein
from sailvl.eval.scorers.transcription import ned, normalise_transcription, transcription
from sailvl.eval.tsv import load_benchmark, write_tsv
from sailvl.eval.understanding import QUESTIONS, TASKS


def _dp(a: str, b: str) -> int:
    """The textbook dynamic programme, the reference for the bit-parallel distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_the_suite_is_appendix_e_captions_and_transcriptions() -> None:
    assert SUITES["understanding"] == tuple(TASKS)
    assert set(TASKS) == {
        "detailcaps",
        "detailcaps-cn",
        "idl-wds",
        "docstruct",
        "synthtext",
        "synthdog-en",
        "synthdog-zh",
    }
    kinds = {n: (t.lang, BENCHMARKS[n].scorer) for n, t in TASKS.items()}
    assert kinds["detailcaps"] == ("en", "caption_judge")
    assert kinds["detailcaps-cn"] == ("zh", "caption_judge")
    assert kinds["synthdog-zh"] == ("zh", "transcription")
    assert {s for _, s in kinds.values()} == {"caption_judge", "transcription"}
    assert all(BENCHMARKS[n].category is None for n in TASKS)  # not in Table 4's averages
    assert UNDERSTANDING_SUBSET == 500
    # The instruction is sent as written: no short-answer suffix on a transcription.
    for task in TASKS.values():
        assert build_prompt(task.name, task.scorer, {"question": task.question}) == task.question
    assert QUESTIONS[("transcription", "zh")] == "请读出图中的所有文字。"


def test_levenshtein_matches_the_dynamic_programme() -> None:
    rng = random.Random(0)
    for _ in range(3000):
        a = "".join(rng.choice("ab c中文") for _ in range(rng.randint(0, 14)))
        b = "".join(rng.choice("ab c中文") for _ in range(rng.randint(0, 14)))
        assert levenshtein(a, b) == _dp(a, b), (a, b)
    long_a = "".join(rng.choice("abcdefgh") for _ in range(300))
    long_b = "".join(rng.choice("abcdefgh") for _ in range(280))
    assert levenshtein(long_a, long_b) == _dp(long_a, long_b)


def test_ned_ignores_whitespace_and_fences_and_keeps_case() -> None:
    assert normalise_transcription("```text\nHello  World\n```") == "HelloWorld"
    assert ned("Hello\nWorld", "Hello World") == 0.0  # line breaks and spaces do not count
    assert ned("abcd", "abxd") == pytest.approx(1 / 4)  # one substitution over 4 chars
    assert ned("abcd", "ab") == pytest.approx(2 / 4)  # divided by the longer text
    assert ned("ab", "abcdef") == pytest.approx(4 / 6)
    assert ned("Total", "total") == pytest.approx(1 / 5)  # case is kept
    assert ned("北京 上海", "北京上每") == pytest.approx(1 / 4)  # per character, Chinese too
    assert ned("", "") == 0.0


def test_transcription_scores_mean_one_minus_ned_and_exact_accuracy() -> None:
    rows: list[dict[str, Any]] = [
        {"index": "1", "answer": "INVOICE\nTotal: 12", "prediction": "INVOICE Total: 12"},
        {"index": "2", "answer": "abcd", "prediction": "abxd", "category": "page"},
        {"index": "3", "answer": "abcd", "prediction": None},  # no answer: NED 1
        {"index": "4", "answer": "['wrong', 'abcd']", "prediction": "abcd"},  # best of two
        {"index": "5", "answer": None, "prediction": "text"},  # no ground truth
    ]
    s = transcription(rows, None)
    assert [x["hit"] for x in s.samples] == pytest.approx([1.0, 0.75, 0.0, 1.0, 0.0])
    assert s.score == pytest.approx(100 * 2.75 / 5)
    assert s.metrics["accuracy"] == pytest.approx(40.0)  # rows 1 and 4 exact
    assert s.metrics["NED"] == pytest.approx(2.25 / 5)
    assert s.metrics["page"] == pytest.approx(75.0)
    assert s.errors == {"no_reference": 1}
    assert SCORERS["transcription"] is transcription
    # No 0.5 threshold as ANLS has: a transcription 60% wrong still earns 40%.
    assert transcription([{"answer": "abcde", "prediction": "abxyz"}]).score == pytest.approx(40)


def _indexed_tsv(tmp_path: Path, n: int) -> str:
    rows = [{"index": i, "question": "q", "answer": str(i)} for i in range(n)]
    path = tmp_path / "t.tsv"
    path.write_bytes(write_tsv(rows, ["index", "question", "answer"]))
    return str(path)


def test_subset_is_a_seeded_random_sample_not_the_first_rows(tmp_path: Path) -> None:
    uri = _indexed_tsv(tmp_path, 2000)
    a = [r["index"] for r in load_benchmark(uri, subset=500, seed=0).records]
    again = [r["index"] for r in load_benchmark(uri, subset=500, seed=0).records]
    other = [r["index"] for r in load_benchmark(uri, subset=500, seed=1).records]
    assert a == again  # the same rows on every run and in every shard
    assert len(a) == len(set(a)) == 500
    assert a != [str(i) for i in range(500)]  # not the first 500
    assert [int(x) for x in a] == sorted(int(x) for x in a)  # kept in file order
    assert set(a) != set(other)
    assert max(int(x) for x in a) > 1500  # drawn from the whole file
    assert len(load_benchmark(uri, subset=5000).records) == 2000  # larger than the file


def test_subset_replaces_a_bad_row_instead_of_shrinking(tmp_path: Path) -> None:
    img = base64.b64encode(b"x" * 80).decode()  # decodable (not opened as an image here)
    rows = [{"index": i, "image": img if i % 2 else "99999", "answer": "x"} for i in range(40)]
    path = tmp_path / "b.tsv"
    path.write_bytes(write_tsv(rows, ["index", "image", "answer"]))
    b = load_benchmark(str(path), subset=10, seed=3)
    assert len(b.records) == 10 and all(int(r["index"]) % 2 for r in b.records)
    assert b.errors["missing_reference"] >= 1  # the bad rows met on the way are counted


def test_from_spec_carries_the_subset_seed() -> None:
    from sailvl.api.evalsuite import EvalSuiteSpec
    from sailvl.eval.config import from_spec

    spec = EvalSuiteSpec.model_validate(
        {
            "model": "file:///m",
            "suite": "understanding",
            "benchmarks": [{"name": "synthdog-zh", "subset": 50, "subsetSeed": 7}],
            "dataRoot": "file:///bench",
            "output": "file:///out",
            "judge": {"endpoint": "http://j:8000/v1", "model": "gpt"},
        }
    )
    cfg = from_spec(spec, env={})
    by_name = {b.name: b for b in cfg.benchmarks}
    assert list(by_name) == ["synthdog-zh", *[n for n in TASKS if n != "synthdog-zh"]]
    assert (by_name["synthdog-zh"].subset, by_name["synthdog-zh"].subset_seed) == (50, 7)
    assert (by_name["idl-wds"].subset, by_name["idl-wds"].subset_seed) == (500, 0)
    assert by_name["idl-wds"].scorer == "transcription"
    assert cfg.budget(by_name["idl-wds"]) == 4096  # a whole page is not cut at 1024
