"""images/cpu-requirements.py keeps every distribution whose shared library torch is
linked against: without them `import torch` fails in the CPU job image (seen in the
real-node e2e test: the caption pod died with "libcublasLt.so.*[0-9] not found")."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _filter() -> object:
    spec = importlib.util.spec_from_file_location(
        "cpu_requirements", ROOT / "images/cpu-requirements.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GPU_ONLY


def _needed(lib: Path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
    return {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}


def test_libraries_torch_links_against_are_not_dropped() -> None:
    torch_spec = importlib.util.find_spec("torch")
    if torch_spec is None or torch_spec.origin is None:
        pytest.fail("torch is not installed (the train extra)", pytrace=False)
    libs = sorted((Path(torch_spec.origin).parent / "lib").glob("*.so*"))
    needed = set().union(*(_needed(lib) for lib in libs))
    providers: dict[str, set[str]] = {}  # shared-library file name -> distributions
    for dist in md.distributions():
        for f in dist.files or []:
            if ".so" in f.name:
                providers.setdefault(f.name, set()).add(dist.metadata["Name"].lower())
    gpu_only = _filter()
    lost = sorted(
        f"{lib} ({', '.join(sorted(providers[lib]))})"
        for lib in needed
        if lib in providers and all(gpu_only.match(d) for d in providers[lib])  # type: ignore[attr-defined]
    )
    assert not lost, f"cpu-requirements.py drops every provider of {lost}, which torch links"
    assert not gpu_only.match("torch")  # type: ignore[attr-defined]
    assert gpu_only.match("triton")  # type: ignore[attr-defined]
