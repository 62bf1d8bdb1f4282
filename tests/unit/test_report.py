"""The progress reporter: file sink merges, kubernetes sink sends a merge patch."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from sailvl.runtime.report import StatusReporter, read_file_status


def test_file_sink_merges_and_rate_limits(tmp_path: Path) -> None:
    path = tmp_path / "p" / "status.json"
    rep = StatusReporter("TrainStage", "ts", "ns", sink=f"file:{path}", min_interval=3600)
    assert rep.update({"step": 1}, final=True)
    assert not rep.update({"step": 2})  # within the interval: queued
    assert read_file_status(path) == {"step": 1}
    assert rep.update({"loss": 0.5}, final=True)
    assert read_file_status(path) == {"step": 2, "loss": 0.5}


def test_kubernetes_sink_patches_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(
                (self.path, self.headers["Content-Type"], self.headers["Authorization"], body)
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    monkeypatch.setenv("SAILVL_API_SERVER", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("SAILVL_API_TOKEN_FILE", str(token))
    try:
        rep = StatusReporter("EvalSuite", "es", "team-a", sink="kubernetes")
        assert rep.update({"scores": {"pope": 0.8}}, final=True)
    finally:
        server.shutdown()
    path, ctype, auth, body = seen[0]
    assert path == "/apis/sailvl.io/v1alpha1/namespaces/team-a/evalsuites/es/status"
    assert ctype == "application/merge-patch+json" and auth == "Bearer secret-token"
    assert body == {"status": {"scores": {"pope": 0.8}}}


def test_unreachable_sink_is_not_fatal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setenv("SAILVL_API_SERVER", "http://127.0.0.1:9")
    monkeypatch.setenv("SAILVL_API_TOKEN_FILE", str(token))
    assert not StatusReporter("TrainStage", "x", "y", sink="kubernetes").update({}, final=True)
