"""The urllib judge client against a local OpenAI-compatible server (127.0.0.1 only),
with messy replies and an unreachable judge, and the runner degrading gracefully."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from sailvl.eval.config import BenchmarkConfig, EvalConfig
from sailvl.eval.judge import Judge, JudgeConfig
from sailvl.eval.runner import run_eval
from sailvl.eval.scorers import FAIL_MSG
from sailvl.eval.synthetic import write_synthetic
from tests.fixtures.chat_server import ChatServer


@pytest.fixture
def server(chat_server: ChatServer) -> ChatServer:
    chat_server.default = "A"
    return chat_server


def _judge(url: str, **kw: Any) -> Judge:
    return Judge(JudgeConfig(endpoint=url, model="judge-x", backoff_s=0.01, timeout_s=5, **kw))


def test_request_shape_and_reply(server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAILVL_JUDGE_API_KEY", "k123")
    server.script = ["  B  "]
    assert _judge(server.base_url).generate("which?", temperature=0.5) == "B"
    req = server.requests[0]
    assert server.paths[0] == "/v1/chat/completions"
    assert server.headers[0]["Authorization"] == "Bearer k123"
    assert req["model"] == "judge-x" and req["temperature"] == 0.5
    assert req["messages"] == [{"role": "user", "content": "which?"}]


@pytest.mark.parametrize(
    "bad",
    [
        (500, {"error": "boom"}),
        (429, {"error": "slow down"}),
        (200, b"not json at all"),  # bytes: sent raw
        (200, {"choices": []}),
        (200, {"choices": [{"message": {"content": None}}]}),
        (200, {"choices": [{"message": {"content": "   "}}]}),
        (200, {"unexpected": True}),
    ],
)
def test_messy_replies_are_retried_then_fail_msg(server: ChatServer, bad: Any) -> None:
    status, payload = bad
    server.script = [(status, payload), (status, payload)]
    server.default = "C"
    j = _judge(server.base_url, retries=2)
    assert j.generate("q") == "C"  # third attempt succeeds
    assert j.calls == 3 and j.failures == 0
    server.script = [(status, payload)] * 2
    j2 = _judge(server.base_url, retries=1)
    assert j2.generate("q") == FAIL_MSG and j2.failures == 1 and j2.last_error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_judge_is_reported_and_scoring_falls_back(tmp_path: Path) -> None:
    uris = write_synthetic(f"file://{tmp_path}/data", n=6)
    judge = JudgeConfig(
        endpoint=f"http://127.0.0.1:{_free_port()}/v1", model="m", retries=0, timeout_s=2
    )
    cfg = EvalConfig(
        model="file:///m",
        output=f"file://{tmp_path}/out",
        benchmarks=[
            BenchmarkConfig(name="synth-mcq", data=uris["synth-mcq"], scorer="mcq"),
            BenchmarkConfig(name="mmvet", data=uris["synth-ocr"], scorer="judge_mmvet"),
        ],
        judge=judge,
    )

    class Answer:
        def generate(self, batch: Any, *, max_new_tokens: int) -> list[str]:
            return ["A"] * len(batch)

    res = run_eval(cfg, Answer())
    assert "judge_unreachable" in res["run_errors"]
    assert res["benchmarks"]["synth-mcq"]["score"] is not None  # exact matching still scores
    mmvet = res["benchmarks"]["mmvet"]
    assert mmvet["score"] is None and mmvet["errors"]["judge_unreachable"] == 1


def test_runner_uses_a_working_judge_for_unmatched_answers(
    server: ChatServer, tmp_path: Path
) -> None:
    uris = write_synthetic(f"file://{tmp_path}/data", n=3)
    cfg = EvalConfig(
        model="file:///m",
        output=f"file://{tmp_path}/out",
        benchmarks=[BenchmarkConfig(name="mmvet", data=uris["synth-ocr"], scorer="judge_mmvet")],
        judge=JudgeConfig(endpoint=server.base_url, model="m", backoff_s=0.01),
    )
    server.script = ["ok", "1.0", "0.0", "0.5"]  # probe, then one grade per row

    class Answer:
        def generate(self, batch: Any, *, max_new_tokens: int) -> list[str]:
            return ["apple"] * len(batch)

    res = run_eval(cfg, Answer())
    assert res["benchmarks"]["mmvet"]["score"] == pytest.approx(50.0)
    assert "Compare the ground truth and prediction" in server.requests[1]["messages"][0]["content"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"endpoint": "judge:8000"}, "endpoint"),
        ({"retries": -1}, "retries"),
        ({"model": ""}, "model"),
    ],
)
def test_judge_config_errors_name_eval_fields(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        JudgeConfig(**{"endpoint": "http://127.0.0.1:1/v1", "model": "m", **kw})


def test_a_permanent_http_error_is_not_retried(server: ChatServer) -> None:
    server.script = [(401, "bad key")]
    j = _judge(server.base_url, retries=3)
    assert j.generate("q") == FAIL_MSG and j.calls == 1 and "401" in (j.last_error or "")
