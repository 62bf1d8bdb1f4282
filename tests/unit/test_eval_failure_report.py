"""An EvalSuite pod that cannot start says why in its status: `sailvl eval` with a
model URI that holds no checkpoint reports the URI and the error class as `message` /
`error` through the `file:` status sink, and as the termination message."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sailvl.eval.main import main
from sailvl.runtime.report import read_file_status


def test_missing_model_is_named_in_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAILVL_STATUS_SINK", f"file:{tmp_path / 'status.json'}")
    monkeypatch.setenv("SAILVL_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("SAILVL_METRICS_PORT", "0")
    model = f"file://{tmp_path}/no-such-model"
    doc = {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "EvalSuite",
        "metadata": {"name": "ev", "namespace": "ns"},
        "spec": {
            "model": model,
            "dataRoot": f"file://{tmp_path}/bench",
            "output": f"file://{tmp_path}/out",
            "suite": "understanding",
        },
    }
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(doc))
    t0 = time.monotonic()
    assert main(SimpleNamespace(config=str(config))) == 1
    st = read_file_status(tmp_path / "status.json")
    assert st.get("message", "").startswith(f"loading model {model}: {st.get('error')}: "), st
    assert st["error"] and st["error"] != "Exception", st
    assert (tmp_path / "termination-log").read_text() == st["message"]
    print(f"eval failure report in {time.monotonic() - t0:.1f}s")
