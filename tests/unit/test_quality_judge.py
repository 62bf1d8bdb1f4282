"""Judge prompts against a local chat-completions server; robust score parsing."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.eval.scorers.judged import caption_judge
from sailvl.quality.judge import (
    CAPTION_PROMPT_VERSION,
    JudgeClient,
    JudgeConfig,
    JudgeError,
    caption_percent,
    caption_score_prompt,
    score_caption,
    score_sft,
)
from sailvl.quality.scores import parse_score, parse_scores
from tests.fixtures.chat_server import ChatServer


@pytest.fixture
def server(chat_server: ChatServer) -> ChatServer:
    return chat_server


def client(server: ChatServer, **kw: Any) -> JudgeClient:
    return JudgeClient(JudgeConfig(base_url=server.base_url, model="judge", backoff_s=0, **kw))


MESSY_CAPTION_REPLIES = [
    ("8", 8.0),  # the score-only reply the rubric asks for
    ("10", 10.0),
    ("The caption is accurate and detailed.\nScore: 7", 7.0),
    ("**Score**: 9/10 — excellent", 9.0),
    ('```json\n{"score": 2, "reason": "misses the sign"}\n```', 2.0),
    ("评分：６分。描述基本准确。", 6.0),
    ("Rating: 4/5", 8.0),  # another denominator is rescaled to 1-10
    ("0", None),  # below the 1-10 scale: no score, not a zero
    ("11", None),
    ("I cannot see the image.", None),
]


@pytest.mark.parametrize(("reply", "expected"), MESSY_CAPTION_REPLIES)
def test_caption_score_over_http(
    server: ChatServer, reply: str, expected: float | None, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SAILVL_JUDGE_API_KEY", "k123")
    server.script = [(200, reply)]
    j = score_caption(
        client(server), "A red car near a building.", ["A red car parked by a brick house."]
    )
    assert j.scores == {"score": expected} and j.reply == reply
    assert j.prompt_version == CAPTION_PROMPT_VERSION
    req = server.requests[0]
    assert req["model"] == "judge" and req["temperature"] == 0.0
    text = req["messages"][0]["content"]
    assert isinstance(text, str)  # no image: the paper's text-only setting
    assert "A red car near a building." in text and "A red car parked by a brick house." in text
    assert server.headers[0]["Authorization"] == "Bearer k123"


def test_caption_rubric_is_figure_7() -> None:
    """Reference-based, 1-10, score-only, with the criteria the paper lists."""
    p = caption_score_prompt("CAND", ["REF ONE"]).lower()
    assert "ground truth" in p and "ref one" in p and "cand" in p
    assert "from 1 to 10" in p and "output only the score" in p
    for criterion in ("objects", "attributes", "relations", "counts", "text", "hallucinat"):
        assert criterion in p, criterion
    assert "complete" in p and "detail" in p
    assert "justification" not in p  # score only: no reasoning asked for


def test_caption_several_references_shown_at_once() -> None:
    refs = ["A dog on grass.", "  ", "A brown dog lying on a lawn.", "A puppy outdoors."]
    p = caption_score_prompt("A dog.", refs)
    assert "[1] A dog on grass." in p and "[2] A brown dog lying on a lawn." in p
    assert "[3] A puppy outdoors." in p and "[4]" not in p  # the blank one is dropped
    assert "3 ground-truth captions" in p and "any of them is supported" in p
    with pytest.raises(ValueError, match="references"):
        caption_score_prompt("A dog.", ["", " "])


def test_caption_with_image_and_percent(server: ChatServer) -> None:
    server.script = [(200, "9")]
    j = score_caption(client(server), "cap", ["ref"], b"\x89PNGfake")
    parts = server.requests[0]["messages"][0]["content"]
    assert "image is attached" in parts[0]["text"]
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert j.scores["score"] == 9.0 and caption_percent(9.0) == 90.0


def test_sft_scores_and_retry_on_5xx(server: ChatServer) -> None:
    server.script = [
        (503, "busy"),
        (500, "oops"),
        (200, "Sure! {'difficulty': 2, 'complexity': '4', 'relevance': 5,}"),
    ]
    conv = [
        {"role": "user", "content": "What colour is the car?"},
        {"role": "assistant", "content": "Red."},
    ]
    j = score_sft(client(server, retries=2), conv, None)
    assert j.scores == {"difficulty": 2.0, "complexity": 4.0, "relevance": 5.0}
    assert len(server.requests) == 3
    text = server.requests[-1]["messages"][0]["content"]
    assert isinstance(text, str) and "User: What colour is the car?" in text
    assert '{"difficulty": N' in text  # braces of the format spec survive


def test_sft_partial_reply_leaves_missing_fields_none(server: ChatServer) -> None:
    server.script = [(200, "Difficulty: 3\nComplexity - 2/5\nI am unsure about the rest (7).")]
    j = score_sft(client(server), [{"role": "user", "content": "hi"}], b"img")
    assert j.scores == {"difficulty": 3.0, "complexity": 2.0, "relevance": None}


def test_client_errors_fail_fast_and_retries_exhaust(server: ChatServer) -> None:
    server.script = [(400, "bad request")]
    with pytest.raises(JudgeError, match="400"):
        client(server, retries=3).chat("x")
    assert len(server.requests) == 1
    server.script = [(500, "a"), (500, "b")]
    with pytest.raises(JudgeError):
        client(server, retries=1).chat("x")
    assert len(server.requests) == 3


def test_unreachable_endpoint() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cfg = JudgeConfig(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", retries=1, backoff_s=0, timeout_s=2
    )
    with pytest.raises(JudgeError):
        JudgeClient(cfg).chat("x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4.0),
        ("Score: 4.5", 4.5),
        ("Score: 9", None),
        ("分数：五分", 5.0),
        ('{"Score": "3/5"}', 3.0),
        ("", None),
        ("Final score - 2", 2.0),
        ("Ｓｃｏｒｅ：４", 4.0),
        ("score is 1", 1.0),
        ("0", None),
    ],
)
def test_parse_score_table(text: str, expected: float | None) -> None:
    assert parse_score(text) == expected


def test_parse_scores_does_not_guess_bare_numbers() -> None:
    fields = {"a": ("alpha",), "b": ("beta",)}
    assert parse_scores("3 and 4", fields) == {"a": None, "b": None}
    assert parse_scores('{"alpha": 3} beta: 4 out of 5', fields) == {"a": 3.0, "b": 4.0}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"base_url": "ftp://x"}, "base_url"),  # the transport's checks (all: test_openai_client)
        ({"retries": -1}, "retries"),
        ({"temperature": -0.1}, "temperature"),
    ],
)
def test_judge_config_validation(kw: dict[str, Any], field: str) -> None:
    args = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kw}
    with pytest.raises(ValueError, match=field):
        JudgeConfig(**args)


class Recording:
    """A JudgeLike that records prompts and answers from a script (pure scorer tests)."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def generate(self, prompt: str, temperature: float = 0.0) -> str:
        self.prompts.append(prompt)
        return self.replies.pop(0) if self.replies else "no idea"


def test_detailcaps_scorer_judges_against_all_three_references() -> None:
    refs = ["A red ball on sand.", "A ball lies on a beach.", "Red ball, sandy ground."]
    rows = [
        {"index": "1", "answer": repr(refs), "prediction": "A red ball."},
        {"index": "2", "answer": "One reference only.", "prediction": "Something."},
    ]
    judge = Recording("0", "9", "Score: 5")  # "0" is off the 1-10 scale: asked again
    s = caption_judge(rows, judge)
    first = judge.prompts[0]
    assert all(f"[{i}] {r}" in first for i, r in enumerate(refs, 1)) and "['" not in first
    assert "from 1 to 10" in first and "Output only the score" in first
    assert len(judge.prompts) == 3  # one call per caption, plus the retry
    assert [x["hit"] for x in s.samples] == [0.9, 0.5]
    assert s.score == pytest.approx(70.0)  # mean grade 7 -> 10 * 7 on 0-100
    assert s.metrics["references"] == {"1": 1, "3": 1}


def test_detailcaps_scorer_counts_failures_and_rows_without_reference() -> None:
    rows: list[dict[str, Any]] = [
        {"index": "1", "answer": "ref", "prediction": "cap"},
        {"index": "2", "answer": None, "prediction": "cap"},
    ]
    s = caption_judge(rows, Recording())  # the judge never gives a score
    assert s.errors == {"judge_failed": 1, "no_reference": 1}
    assert s.score == 0.0 and [x["hit"] for x in s.samples] == [0.0, 0.0]
