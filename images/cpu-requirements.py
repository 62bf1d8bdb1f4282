"""Print a pinned requirement list for a CPU-only install of the given pip specs.

torch on PyPI is the CUDA build. Its shared libraries are linked against the CUDA
runtime libraries of the nvidia-* wheels (libtorch_cuda.so needs cudart, cuBLAS, cuDNN,
cuFFT, cuSPARSE, NCCL, ...): ``import torch`` fails without them even on a machine that
never uses CUDA ("libcublasLt.so.*[0-9] not found"), so they stay. triton (1 GB, the GPU
kernel compiler) is only imported when a GPU kernel is compiled: it is left out. pip
cannot skip a dependency, so this asks pip to resolve the specs (``--dry-run --report``:
metadata only, nothing installed), drops the GPU-only distributions, and prints
``name==version`` lines for ``pip install --no-deps -r``. The resolution is pip's own;
only the filter is ours.

Usage: python cpu-requirements.py [--pyproject FILE --extra NAME]... [SPEC...] > req.txt

``--pyproject`` takes the specs from a pyproject.toml (its dependencies plus the named
extras) without the project itself, so an image can install the dependencies in a layer
of their own that a change of the sources does not invalidate.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib

#: Distributions torch pulls in on Linux that a CPU run never loads: triton. (Not the
#: nvidia-* CUDA libraries: torch's own shared libraries are linked against them;
#: tests/unit/test_cpu_requirements.py checks that against the installed torch.)
GPU_ONLY = re.compile(r"^triton$")


def pyproject_specs(path: str, extras: list[str]) -> list[str]:
    """The project's dependencies and those of the named extras (PEP 621 tables)."""
    with open(path, "rb") as f:
        project = tomllib.load(f)["project"]
    specs = list(project.get("dependencies", []))
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return specs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", help="take the specs from this pyproject.toml")
    parser.add_argument("--extra", action="append", default=[], help="an extra of it")
    parser.add_argument("specs", nargs="*", help="pip requirement specifiers")
    args = parser.parse_args(argv)
    specs = list(args.specs)
    if args.pyproject:
        specs += pyproject_specs(args.pyproject, args.extra)
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
