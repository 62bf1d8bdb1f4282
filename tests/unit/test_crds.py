"""The generated CRDs: fresh, structural, valid CustomResourceDefinitions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sailvl.api.crdgen import write_all
from sailvl.api.kinds import KINDS

ROOT = Path(__file__).parents[2]


def test_crds_are_not_stale(tmp_path: Path) -> None:
    write_all(tmp_path)
    for info in KINDS.values():
        name = f"{info.singular}.yaml"
        fresh = (tmp_path / name).read_text()
        for folder in ("crds", "charts/sailvl-operator/crds"):
            committed = ROOT / folder / name
            assert committed.exists(), f"{committed} missing: run `make crds`"
            assert committed.read_text() == fresh, f"{committed} is stale: run `make crds`"


def _walk(node: object, path: str = "") -> list[str]:
    bad = []
    if isinstance(node, dict):
        for key in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "title", "const"):
            if key in node:
                bad.append(f"{path}.{key}")
        if (
            node.get("type") == "object"
            and "properties" not in node
            and path != ".properties.metadata"
        ) and not (
            node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
        ):
            bad.append(f"{path}: object without properties")
        for k, v in node.items():
            bad += _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad += _walk(v, f"{path}[{i}]")
    return bad


@pytest.mark.parametrize("info", list(KINDS.values()), ids=list(KINDS))
def test_crd_is_structural(info) -> None:  # type: ignore[no-untyped-def]
    crd = yaml.safe_load((ROOT / "crds" / f"{info.singular}.yaml").read_text())
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["sailvl"]
    assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Phase", "Age"}
    assert "spec" in schema["required"]


def test_crds_validate_as_customresourcedefinitions() -> None:
    exe = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    files = sorted(str(p) for p in (ROOT / "crds").glob("*.yaml"))
    out = subprocess.run([exe, "--strict", *files], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(files), out.stdout
