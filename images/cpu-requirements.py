"""Print a pinned requirement list for a CPU-only install of the given pip specs.

torch on PyPI is the CUDA build and depends on about 4 GB of CUDA libraries (nvidia-*,
cuda-*) and triton (the GPU kernel compiler). The same torch wheel imports and runs on
CPU without them: it loads the CUDA libraries only when CUDA is used. pip cannot skip a
dependency, so this asks pip to resolve the specs (``--dry-run --report``: metadata only,
nothing installed), drops the GPU-only distributions, and prints ``name==version`` lines
for ``pip install --no-deps -r``. The resolution is pip's own; only the filter is ours.

Usage: python cpu-requirements.py SPEC... > requirements.txt
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

#: GPU-only distributions torch pulls in on Linux (CUDA runtime libraries, cuDNN, NCCL,
#: the CUDA toolkit meta package and its Python bindings, triton).
GPU_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def main(specs: list[str]) -> int:
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--quiet", "--report", "-", *specs],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for item in json.loads(report)["install"]:
        meta = item["metadata"]
        name = meta["name"].lower().replace("_", "-")
        if GPU_ONLY.match(name):
            continue
        if item.get("download_info", {}).get("dir_info") is not None:
            continue  # the local project itself: installed afterwards with --no-deps
        print(f"{name}=={meta['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
