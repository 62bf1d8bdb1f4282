"""Benchmark artefacts: one JSON file per benchmark under ``benchmarks/results/``.

Every ``tests/bench/bench_*.py`` ends with :func:`write_result`, which records what an
engineer needs to judge the number: the inputs, the machine (standard library only:
``platform``, ``os``), the versions of the packages involved and the commit, each figure
as min / median / max over its rounds (raw values kept), and the side-by-side ratio the
benchmark exists for, with its target. ``tests/bench/report.py`` (``make bench``) turns
the files into ``benchmarks/README.md``; the README's performance claims cite that
table. ``SAILVL_BENCH_RESULTS`` points the files elsewhere (the quick ratio tests in
``make test`` write none: they call the benchmarks' measuring functions directly).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PACKAGES = ("sailvl", "torch", "transformers", "deepspeed", "mosaicml-streaming", "pillow")


def spread(values: list[float], unit: str = "") -> dict[str, Any]:
    """min / median / max over rounds, with the raw values."""
    if not values:
        raise ValueError("spread: no values")
    out: dict[str, Any] = {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "rounds": len(values),
        "values": [round(v, 6) for v in values],
    }
    if unit:
        out["unit"] = unit
    return out


def machine() -> dict[str, Any]:
    """The machine as the standard library sees it (and the load while it ran)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        info["memory_gib"] = round(
            os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1
        )
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "sailvl", "tests/bench"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        out["commit"] = commit + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def write_result(
    bench: str,
    *,
    title: str,
    inputs: dict[str, Any],
    figures: dict[str, dict[str, Any]],
    ratio: dict[str, Any],
    notes: str = "",
) -> Path:
    """Write ``<results>/<bench>.json``; return its path.

    ``figures``: name -> :func:`spread` output; ``ratio``: a :func:`spread` output plus
    ``name`` (what over what) and ``target`` (the goal it is held to)."""
    folder = Path(os.environ.get("SAILVL_BENCH_RESULTS") or RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "bench": bench,
        "title": title,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["python", *sys.argv]),
        "inputs": inputs,
        "machine": machine(),
        "versions": versions(),
        "figures": figures,
        "ratio": ratio,
        "notes": notes,
    }
    path = folder / f"{bench}.json"
    path.write_text(json.dumps(body, indent=1, sort_keys=False) + "\n")
    print(f"result: {path}")
    return path
