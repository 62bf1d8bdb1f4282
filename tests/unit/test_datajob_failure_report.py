"""A DataJob pod that fails says why outside its log: the first error line of its data
command (the file or object, then what went wrong) or the exception it raised, as
`message` / `error` through a `file:` status sink and as the container's termination
message, which the operator names in the DataJob's Failed condition."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sailvl.data import datajob
from sailvl.runtime.report import read_file_status


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A pod's env (status sink, termination message file, no metrics port) and a job
    config importing a LLaVA JSON file."""
    monkeypatch.setenv("SAILVL_STATUS_SINK", f"file:{tmp_path / 'status.json'}")
    monkeypatch.setenv("SAILVL_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("SAILVL_METRICS_PORT", "0")
    for name in ("SAILVL_SHARD_INDEX", "JOB_COMPLETION_INDEX", "SAILVL_SHARD_COUNT"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "in" / "data.json"
    data.parent.mkdir()
    doc = {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "DataJob",
        "metadata": {"name": "dj", "namespace": "ns"},
        "spec": {
            "task": "import",
            "input": f"file://{data}",
            "output": f"file://{tmp_path}/out",
            "parallelism": 1,
            "import": {"format": "llava"},
        },
    }
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(doc))
    return SimpleNamespace(
        args=SimpleNamespace(config=config),
        data=data,
        status=lambda: read_file_status(tmp_path / "status.json"),
        termination=lambda: (tmp_path / "termination-log").read_text(),
    )


def test_unreadable_input_file_is_named(pod: SimpleNamespace) -> None:
    pod.data.write_text('[{"id": "a", "image": "x.png", "conversations": [')  # cut short
    assert datajob.main(pod.args) == 1
    st = pod.status()
    assert st.get("error") == "TaskFailed", st
    assert st.get("message", "").startswith(f"data import: file://{pod.data}: json: "), st
    assert pod.termination() == f"TaskFailed: {st['message']}"


def test_raised_error_is_named_with_its_class(
    pod: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(args: object, progress_stream: object = None) -> int:
        raise PermissionError(13, "Permission denied", str(pod.data))

    monkeypatch.setattr("sailvl.data.importers.main.run_import", denied)
    assert datajob.main(pod.args) == 1
    st = pod.status()
    assert st.get("error") == "PermissionError", st
    assert st["message"].startswith(f"data import file://{pod.data} -> "), st
    assert "(shard 0 of 1): PermissionError: [Errno 13] Permission denied" in st["message"]
    assert pod.termination() == st["message"]


def test_invalid_job_config_leaves_a_termination_message(pod: SimpleNamespace) -> None:
    doc = yaml.safe_load(pod.args.config.read_text())
    doc["spec"]["import"] = {"format": "csv"}
    pod.args.config.write_text(yaml.safe_dump(doc))
    assert datajob.main(pod.args) == datajob.EXIT_INVALID
    assert pod.termination().startswith("InvalidSpec: ")
    assert "spec.import.format" in pod.termination()


def test_error_lines_pass_through_and_keep_only_error_lines() -> None:
    out = io.StringIO()
    tee = datajob.ErrorLines(out, keep=2)
    text = "import: 1/3 files\rimport: 2/3\rfailed: s3://b/x.json: gone\nshard 0 done\n"
    tee.write(text[:20])
    tee.write(text[20:] + "invalid: a\nrejected: b\n")
    assert out.getvalue() == text + "invalid: a\nrejected: b\n"
    assert tee.lines == ["failed: s3://b/x.json: gone", "invalid: a"]
    assert datajob.failure("import", tee.lines, 1) == (
        "data import: s3://b/x.json: gone (and 1 more errors)",
        "TaskFailed",
    )
    assert datajob.failure("score", [], 1)[1] == "ExitCode"
