"""Helm access and rendering helpers for the chart tests (fixtures in conftest.py).

Helm comes from `helm-python-sdk` (PyPI, the dev extra): Helm's own Go SDK (lint, chart
loading and the template engine) compiled into a C library and called through ctypes,
so `lint(strict=True)` and `Chart.render` are `helm lint --strict` and `helm template`
without a binary. Where the SDK cannot load, a helm binary is used instead: $SAILVL_HELM,
else the one tests/chart/build-helm.sh builds from the Go module proxy into
${SAILVL_CACHE:-~/.cache/sailvl}/helm/<version>/helm.

Missing tools fail the tests (they are part of `make test`); set
SAILVL_ALLOW_MISSING_TOOLS=1 to turn that into skips on a workstation without them.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "sailvl-operator"
HELM_VERSION = "v3.17.3"  # what build-helm.sh builds
RELEASE, NAMESPACE = "sailvl", "sailvl-system"

# One entry per toggle (and the default): the chart must lint strictly and render for each.
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
    },
    "namespaced": {"scope": "namespaces", "watchNamespaces": ["team-a", "team-b"]},
    "namespaced-strict": {
        "scope": "namespaces",
        "rbac": {"crdDiscovery": False, "jobAccess": False, "aggregateRoles": False},
    },
    "ha": {"operator": {"replicas": 2}, "networkPolicy": {"enabled": True}},
    "crd-templates": {"crds": {"asTemplates": True}},
    "volcano-kueue": {
        "scheduling": {"kueue": {"queueName": "team-a"}, "volcano": {"enabled": True}}
    },
    "coscheduling-ascend": {
        "scheduling": {"coscheduling": {"enabled": True}},
        "ascend": {"acceleratorType": "module", "supplementalGroups": [1000]},
    },
    "no-dashboard": {"grafanaDashboard": {"enabled": False}, "metricsService": {"enabled": False}},
    "podmonitor-namespaces": {"podMonitor": {"enabled": True, "namespaces": ["ml"]}},
}


def missing_tool(what: str) -> None:
    msg = f"{what}; run tests/chart/install-tools.sh (or pip install -e '.[dev]')"
    if os.environ.get("SAILVL_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(msg)
    pytest.fail(msg, pytrace=False)


@dataclass
class Helm:
    """`lint` and `template` over whichever real Helm is available."""

    backend: str  # "sdk" or a helm binary path

    def lint(self, chart: Path, values: dict[str, Any]) -> list[str]:
        """`helm lint --strict`: the messages of severity warning or error."""
        if self.backend == "sdk":
            import helm_python

            report = helm_python.lint(chart, values or None, strict=True, namespace=NAMESPACE)
            bad = [m for m in report["messages"] if m["severity"] >= 2]
            return [f"{m['path']}: {m['error']}" for m in bad] + list(report["errors"])
        proc = self._run(["lint", "--strict", str(chart)], values)
        return [] if proc.returncode == 0 else [proc.stdout + proc.stderr]

    def template(
        self, chart: Path, values: dict[str, Any], namespace: str = NAMESPACE
    ) -> dict[str, str]:
        """`helm template`: rendered text by template path (without crds/)."""
        if self.backend == "sdk":
            import helm_python

            loaded = helm_python.Chart.load(chart)
            return loaded.render(values or None, name=RELEASE, namespace=namespace, is_install=True)
        proc = self._run(["template", RELEASE, str(chart), "-n", namespace], values)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        return {"all.yaml": proc.stdout}

    def _run(self, args: list[str], values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(values, f)
        try:
            cmd = [self.backend, *args, "-f", f.name]
            return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        finally:
            os.unlink(f.name)


def find_helm() -> Helm | None:
    try:
        import helm_python

        helm_python.helm_sdk_version()  # loads the native library
        return Helm("sdk")
    except Exception:  # noqa: BLE001 - any load failure means: try a binary
        pass
    cache = Path(os.environ.get("SAILVL_CACHE", Path.home() / ".cache" / "sailvl"))
    for cand in (os.environ.get("SAILVL_HELM"), cache / "helm" / HELM_VERSION / "helm"):
        if cand and Path(cand).is_file():
            return Helm(str(cand))
    return None


def docs_of(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a render, in template order."""
    out: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):  # text for the user, not a manifest
            continue
        out.extend(d for d in yaml.safe_load_all(rendered[path]) if d)
    return out


class Renderer:
    """Renders the chart (optionally a copy with extra CRD files) and caches by values."""

    def __init__(self, helm: Helm) -> None:
        self.helm = helm
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def __call__(
        self, values: dict[str, Any], chart: Path = CHART, namespace: str = NAMESPACE
    ) -> list[dict[str, Any]]:
        key = json.dumps([str(chart), values, namespace], sort_keys=True)
        if key not in self._cache:
            rendered = self.helm.template(chart, copy.deepcopy(values), namespace)
            self._cache[key] = docs_of(rendered)
        return copy.deepcopy(self._cache[key])


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def tool(name: str) -> str:
    """Absolute path of a command-line tool (venv bin first), or fail/skip."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.is_file() else shutil.which(name)
    if path is None:
        missing_tool(f"{name} not found")
    assert path is not None
    return path
