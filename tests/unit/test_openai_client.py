"""The shared chat-completions client: request shape, retry policy, back-off, config."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.runtime import openai_client
from sailvl.runtime.openai_client import ChatClient, ChatConfig, ChatError, user_content
from tests.fixtures.chat_server import ChatServer


def client(server: ChatServer, **kw: Any) -> ChatClient:
    return ChatClient(ChatConfig(base_url=server.base_url, model="m", backoff_s=0, **kw))


def test_request_shape_with_image_and_no_key(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAILVL_JUDGE_API_KEY", raising=False)
    chat_server.script = ["  hello \n"]
    c = client(chat_server, max_tokens=7)
    assert c.complete(user_content("look", b"\x89PNG"), temperature=0.3) == "hello"
    body = chat_server.requests[0]
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("m", 7, 0.3)
    text, image = body["messages"][0]["content"]
    assert text == {"type": "text", "text": "look"}
    assert image["image_url"]["url"] == "data:image/jpeg;base64,iVBORw=="
    assert "Authorization" not in chat_server.headers[0]
    assert chat_server.paths[0] == "/v1/chat/completions" and c.attempts == 1


def test_key_from_the_named_env_var_only(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "s3cret")
    monkeypatch.setenv("SAILVL_JUDGE_API_KEY", "other")
    client(chat_server, api_key_env="MY_KEY").complete("x")
    client(chat_server, api_key_env=None).complete("x")
    assert chat_server.headers[0]["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in chat_server.headers[1]


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_permanent_http_errors_fail_at_once(chat_server: ChatServer, status: int) -> None:
    chat_server.script = [(status, "no")]
    c = client(chat_server, retries=3)
    with pytest.raises(ChatError, match=str(status)) as err:
        c.complete("x")
    assert not err.value.transient and len(chat_server.requests) == 1 and c.attempts == 1


@pytest.mark.parametrize(
    "bad",
    [(408, "slow"), (429, "busy"), (503, "down"), (200, b"{not json"), (200, {"choices": []})]
    + [(200, "   ")],
)
def test_transient_failures_are_retried_with_doubling_backoff(
    chat_server: ChatServer, bad: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(openai_client.time, "sleep", sleeps.append)
    chat_server.script = [bad, bad, "fine"]
    c = ChatClient(ChatConfig(base_url=chat_server.base_url, model="m", retries=2, backoff_s=0.5))
    assert c.complete("x") == "fine" and c.attempts == 3 and c.last_error
    assert sleeps == [0.5, 1.0]
    chat_server.script = [bad, bad]
    with pytest.raises(ChatError) as err:
        client(chat_server, retries=1).complete("x")
    assert err.value.transient and len(chat_server.requests) == 5


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"base_url": "judge:8000"}, "base_url"),
        ({"model": ""}, "model"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"retries": -1}, "retries"),
        ({"backoff_s": -1}, "backoff_s"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_config_validation_names_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ChatConfig(**{"base_url": "http://127.0.0.1:1/v1", "model": "m", **kw})
