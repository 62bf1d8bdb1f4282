"""Judge prompts against a local chat-completions server; robust score parsing."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.quality.judge import (
    JudgeClient,
    JudgeConfig,
    JudgeError,
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
    ("The caption is accurate and detailed.\nScore: 4", 4.0),
    ("**Score**: 5/5 — excellent", 5.0),
    ('```json\n{"score": 2, "reason": "misses the sign"}\n```', 2.0),
    ("评分：３分。描述基本准确。", 3.0),
    ("I count 3 dogs and 2 cats... overall I rate it 4 out of 5.", 4.0),
    ("Rating: 8/10", 4.0),
    ("I cannot see the image.", None),
]


@pytest.mark.parametrize(("reply", "expected"), MESSY_CAPTION_REPLIES)
def test_caption_score_over_http(
    server: ChatServer, reply: str, expected: float | None, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SAILVL_JUDGE_API_KEY", "k123")
    server.script = [(200, reply)]
    j = score_caption(client(server), "A red car near a building.", b"\x89PNGfake")
    assert j.scores == {"score": expected} and j.reply == reply
    req = server.requests[0]
    assert req["model"] == "judge" and req["temperature"] == 0.0
    parts = req["messages"][0]["content"]
    assert "A red car near a building." in parts[0]["text"] and "Score: N" in parts[0]["text"]
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert server.headers[0]["Authorization"] == "Bearer k123"


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
