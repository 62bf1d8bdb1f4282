"""A `sailvl data import` killed with SIGKILL mid-run, then rerun: every id exactly once.

The import runs as a real subprocess (its own process group, two worker processes over
two LLaVA files); the test waits until some output parts are committed, kills the
whole group with SIGKILL, checks that no manifest exists, reruns the same command and
checks the finished dataset: every input id exactly once with its own image bytes, and
the parts committed before the kill were not written again (same inode and mtime:
the rerun skipped them rather than redoing them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sailvl.data.dataset import Dataset
from tests.unit.test_import_fixtures import image

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).parents[2]


def write_inputs(root: Path, files: int, rows: int) -> dict[str, bytes]:
    (root / "img").mkdir(parents=True)
    pool = []
    for k in range(16):
        data = image(k, size=48)
        (root / "img" / f"{k}.png").write_bytes(data)
        pool.append(data)
    want = {}
    for f in range(files):
        doc = []
        for i in range(rows):
            sid, k = f"f{f}-r{i}", (f * rows + i) % 16
            doc.append({"id": sid, "image": f"img/{k}.png", "conversations": [
                {"from": "human", "value": f"<image>\nRow {i}?"},
                {"from": "gpt", "value": f"Answer {i}."}]})  # fmt: skip
            want[sid] = pool[k]
        (root / f"part{f}.json").write_text(json.dumps(doc))
    return want


def parts(out: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(out.glob("parts/*/manifest.json"))
    }


def test_sigkill_mid_import_then_resume(tmp_path: Path) -> None:
    src = tmp_path / "src"
    want = write_inputs(src, files=2, rows=600)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sailvl.cli", "data", "import", str(src), str(out),
           "--workers", "2", "--rows-per-shard", "20", "--max-reject-ratio", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(parts(out)) < 4:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "no parts committed in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = parts(out)
    total_parts = 2 * 600 // 20
    assert 4 <= len(before) < total_parts, "the kill must land mid-import"
    assert not (out / "manifest.json").exists(), "a killed import must leave no manifest"

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    after = parts(out)
    assert {k: after[k] for k in before} == before, "committed parts were rewritten"
    ds = Dataset.open(str(out))
    ds.validate(deep=True)
    seen: dict[str, bytes] = {}
    for i in range(len(ds.shards)):
        for row in ds.read_shard(i).rows:
            assert row is not None and row["id"] not in seen, row and row["id"]
            seen[row["id"]] = row["images"][0]
    assert seen == want
    assert ds.manifest.meta["import"]["rows_in"] == len(want)
