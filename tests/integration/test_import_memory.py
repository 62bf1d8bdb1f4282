"""A big LLaVA JSON list is streamed: peak memory does not grow with the file.

Two imports of text-only LLaVA lists (10 KB per row), one 10x the other (6 MB and 60
MB), each in a fresh process that reports its own peak RSS (`ru_maxrss`). Loading the
list whole (`json.load`) would cost a multiple of the file size; the streamed import
holds one element plus one output part, so the two peaks differ by far less than the
54 MB between the files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).parents[2]
PEAK = """
import resource, sys
from sailvl.cli import main
rc = main(["data", "import", sys.argv[1], sys.argv[2], "--rows-per-shard", "100",
           "--no-progress", "--max-reject-ratio", "0"])
print(rc, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_kib(tmp: Path, rows: int) -> tuple[int, int]:
    path = tmp / f"rows{rows}.json"
    pad = "x" * 10_000
    with path.open("w") as f:
        f.write("[")
        for i in range(rows):
            row = {"id": f"r{i}", "conversations": [
                {"from": "human", "value": f"Q{i} {pad}"}, {"from": "gpt", "value": "A"}]}  # fmt: skip
            f.write(("," if i else "") + json.dumps(row))
        f.write("]")
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(path), str(tmp / f"out{rows}")],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rc, kib = out.stdout.split()[-2:]
    assert rc == "0", out.stderr
    return path.stat().st_size, int(kib)


def test_peak_memory_does_not_follow_the_file_size(tmp_path: Path) -> None:
    small_size, small_peak = peak_kib(tmp_path, 600)
    big_size, big_peak = peak_kib(tmp_path, 6000)
    assert big_size - small_size > 50e6
    assert (big_peak - small_peak) * 1024 < 0.25 * (big_size - small_size), (small_peak, big_peak)
