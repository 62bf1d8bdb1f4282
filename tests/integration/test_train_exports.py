"""checkpoint.exportEverySteps / exportEveryTokens on real (tiny, 1 CPU worker, ZeRO-2)
training runs, both in one launch: loadable model folders at the interval, independent
of the resume checkpoints, named as the spec predicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sailvl.train.exports import list_exports

from .test_train_stages import free_port, tensors, train_env, write_job

pytestmark = pytest.mark.timeout(600)


def test_exports_at_step_and_token_intervals(tmp_path: Path) -> None:
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    data = f"file://{tmp_path}/ds"
    write_synthetic(data, 48, SyntheticConfig(seed=3, min_size=48, max_size=96))
    steps_out, tokens_out = f"file://{tmp_path}/by-steps", f"file://{tmp_path}/by-tokens"
    common = {"preset": "sft-instruction", "data": data, "zero": 2, "lr": 1e-3}
    jobs = [
        write_job(
            tmp_path / "steps.yaml", name="by-steps", output=steps_out, budget={"steps": 4},
            devicesPerNode=1, checkpoint={"intervalSteps": 3, "keep": 2, "exportEverySteps": 2},
            **common,
        ),
        write_job(
            tmp_path / "tokens.yaml", name="by-tokens", output=tokens_out, budget={"steps": 3},
            devicesPerNode=1, checkpoint={"intervalSteps": 100, "keep": 1, "exportEveryTokens": 300},
            **common,
        ),
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "sailvl.train.sequence", *map(str, jobs)],
        env=train_env(tmp_path, free_port()), capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]

    kept = list_exports(steps_out)
    assert [(e.name, e.step, e.samples) for e in kept] == [("step-2", 2, 8), ("step-4", 4, 16)]
    assert 0 < kept[0].tokens < kept[1].tokens
    # Resume checkpoints keep their own interval and retention (intervalSteps 3).
    stage = Path(steps_out.removeprefix("file://"))
    assert sorted(p.name for p in stage.glob("step-*")) == ["step-00000003"]
    first, last = tensors(kept[0].uri), tensors(kept[1].uri)
    final = tensors(f"{steps_out}/final")
    assert all(bool((last[k] == final[k]).all()) for k in final), "step-4 export != final/"
    assert any(not bool((first[k] == last[k]).all()) for k in final), "exports identical"

    # Token marks: every multiple of 300 reached, written by the step that reached it.
    total = json.loads((tmp_path / "status.json").read_text())["tokens"]
    marks = list_exports(tokens_out)
    assert [e.name for e in marks] == [f"tokens-{m}" for m in range(300, total + 1, 300)]
    assert len(marks) >= 2, total
    for e in marks:
        assert e.tokens >= int(e.name.removeprefix("tokens-")) and e.tokens <= total
        assert (Path(e.uri.removeprefix("file://")) / "_COMMITTED").exists()
