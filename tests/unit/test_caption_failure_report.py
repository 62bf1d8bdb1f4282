"""A CaptionJob pod that fails says why in its resource's status, not only in its log:
the failed shard's URI (or the step that could not start) and the error class, as
`message` / `error` through the `file:` status sink, and the same line as the
container's termination message (`sailvl.runtime.report.report_failure`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from sailvl.caption.main import config_from_spec, main, run_job
from sailvl.runtime.report import StatusReporter, read_file_status
from tests.unit.test_caption_job import spec
from tests.unit.test_caption_worker import FakeBackend, make_dataset


@pytest.fixture
def sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(status file, termination message file), as a pod's env would name them."""
    status, term = tmp_path / "status.json", tmp_path / "termination-log"
    monkeypatch.setenv("SAILVL_STATUS_SINK", f"file:{status}")
    monkeypatch.setenv("SAILVL_TERMINATION_LOG", str(term))
    return status, term


def test_unreadable_shard_is_named_in_status(tmp_path: Path, sinks: tuple[Path, Path]) -> None:
    make_dataset(f"file://{tmp_path}/in", 6, per_shard=3)  # 2 shards
    bad = sorted((tmp_path / "in").glob("*.parquet"))[1]
    bad.write_bytes(b"PAR1 this is not a parquet file")
    cfg = config_from_spec(spec(tmp_path, parallelism=1, shardRetries=1), "cj", "ns")
    rc = run_job(cfg, StatusReporter("CaptionJob", "cj", "ns"), backend=FakeBackend())
    assert rc == 1
    status, term = sinks
    st = read_file_status(status)
    assert st["shardsFailed"] == 1 and st["shardsDone"] == 1, st
    assert st.get("error") == "ArrowInvalid", st
    want = f"shard file://{tmp_path}/in/{bad.name} (read): ArrowInvalid:"
    assert st.get("message", "").startswith(want), st
    assert "\n" not in st["message"]
    assert term.read_text() == st["message"]


def test_missing_input_is_named_before_any_shard(
    tmp_path: Path, sinks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole entry (`sailvl caption --config`, the fake backend in place of the
    engine): the input holds no dataset."""
    (tmp_path / "in").mkdir()
    doc: dict[str, Any] = {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "CaptionJob",
        "metadata": {"name": "cj", "namespace": "ns"},
        "spec": spec(tmp_path).model_dump(by_alias=True, exclude_none=True),
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setattr("sailvl.caption.backends.make_backend", lambda cfg: FakeBackend())
    assert main(SimpleNamespace(config=str(path))) == 1
    status, term = sinks
    st = read_file_status(status)
    assert st.get("error") == "NotFoundError", st
    assert st["message"].startswith(f"listing the input shards of file://{tmp_path}/in: "), st
    assert "manifest.json" in st["message"], st
    assert term.read_text() == st["message"]
