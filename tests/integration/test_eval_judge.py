"""The urllib judge client against a local OpenAI-compatible server (127.0.0.1 only),
with messy replies and an unreachable judge, and the runner degrading gracefully."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sailvl.eval.config import BenchmarkConfig, EvalConfig
from sailvl.eval.judge import Judge, JudgeConfig
from sailvl.eval.runner import run_eval
from sailvl.eval.scorers import FAIL_MSG
from sailvl.eval.synthetic import write_synthetic


class FakeJudgeServer:
    """Replies from a script: each item is (status, body) or a reply string."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.default: Any = "A"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                item = outer.script.pop(0) if outer.script else outer.default
                status, payload = (200, item) if isinstance(item, str) else item
                if isinstance(payload, str) and status == 200:
                    payload = json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": payload}}]}
                    )
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[FakeJudgeServer]:
    s = FakeJudgeServer()
    yield s
    s.close()


def _judge(url: str, **kw: Any) -> Judge:
    return Judge(JudgeConfig(endpoint=url, model="judge-x", backoff_s=0.01, timeout_s=5, **kw))


def test_request_shape_and_reply(server: FakeJudgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAILVL_JUDGE_API_KEY", "k123")
    server.script = ["  B  "]
    assert _judge(server.url).generate("which?", temperature=0.5) == "B"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k123"
    assert req["body"]["model"] == "judge-x" and req["body"]["temperature"] == 0.5
    assert req["body"]["messages"] == [{"role": "user", "content": "which?"}]


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
def test_messy_replies_are_retried_then_fail_msg(server: FakeJudgeServer, bad: Any) -> None:
    status, payload = bad
    server.script = [(status, payload), (status, payload)]
    server.default = "C"
    j = _judge(server.url, retries=2)
    assert j.generate("q") == "C"  # third attempt succeeds
    assert j.calls == 3 and j.failures == 0
    server.script = [(status, payload)] * 2
    j2 = _judge(server.url, retries=1)
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
    server: FakeJudgeServer, tmp_path: Path
) -> None:
    uris = write_synthetic(f"file://{tmp_path}/data", n=3)
    cfg = EvalConfig(
        model="file:///m",
        output=f"file://{tmp_path}/out",
        benchmarks=[BenchmarkConfig(name="mmvet", data=uris["synth-ocr"], scorer="judge_mmvet")],
        judge=JudgeConfig(endpoint=server.url, model="m", backoff_s=0.01),
    )
    server.script = ["ok", "1.0", "0.0", "0.5"]  # probe, then one grade per row

    class Answer:
        def generate(self, batch: Any, *, max_new_tokens: int) -> list[str]:
            return ["apple"] * len(batch)

    res = run_eval(cfg, Answer())
    assert res["benchmarks"]["mmvet"]["score"] == pytest.approx(50.0)
    assert (
        "Compare the ground truth and prediction"
        in server.requests[1]["body"]["messages"][0]["content"]
    )
