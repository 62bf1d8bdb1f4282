"""SAILVL_TRAIN_ID_LOG: a folder gets appended lines, a storage URI one object per step
(pods are killed with their files; the real-node e2e test reads the log from S3)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sailvl.train.loop import _log_step


def test_folder_gets_one_line_per_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAILVL_TRAIN_ID_LOG", str(tmp_path / "ids"))
    _log_step("s", 1, 0, ["a", "b"], loss=1.5)
    _log_step("s", 2, 0, ["c"], loss=1.0)
    rows = [json.loads(x) for x in (tmp_path / "ids" / "rank-0.jsonl").read_text().splitlines()]
    assert [(r["step"], r["ids"], r["loss"]) for r in rows] == [
        (1, ["a", "b"], 1.5),
        (2, ["c"], 1.0),
    ]


def test_uri_gets_one_object_per_step_keyed_by_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAILVL_TRAIN_ID_LOG", f"file://{tmp_path}/ids")
    _log_step("s", 3, 1, ["x"], loss=0.5)
    _log_step("s", 3, 1, ["x"], loss=0.4)
    files = sorted((tmp_path / "ids" / "rank-1").iterdir())
    assert len(files) == 1  # same host and pid: the replay overwrites its own object
    row = json.loads(files[0].read_text())
    host = socket.gethostname()
    assert files[0].name.startswith(f"00000003-{host}-")
    assert (row["name"], row["step"], row["rank"], row["host"], row["ids"]) == (
        "s",
        3,
        1,
        host,
        ["x"],
    )
    assert not (tmp_path / "ids" / "rank-1.jsonl").exists()
