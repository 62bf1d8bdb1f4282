"""Import hygiene and layering: what the light packages must never pull in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "kopf", "boto3", "kubernetes", "transformers", "deepspeed")


@pytest.mark.parametrize("module", ["sailvl", "sailvl.api", "sailvl.cli", "sailvl.api.crdgen"])
def test_light_imports(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def test_operator_folder_is_not_a_package() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    code = "import operator; print(operator.__file__); print(operator.itemgetter(1)([5, 7]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    path, value = out.stdout.split()
    assert str(ROOT) not in path and value == "7"


def test_api_imports_no_client_or_operator() -> None:
    for path in (ROOT / "sailvl" / "api").glob("*.py"):
        text = path.read_text()
        for banned in ("import kopf", "import kubernetes", "sailvl_operator", "import torch"):
            assert banned not in text, f"{path.name} contains {banned!r}"


def test_job_suite_never_imports_operator() -> None:
    for path in (ROOT / "sailvl").rglob("*.py"):
        text = path.read_text()
        assert "import sailvl_operator" not in text and "from sailvl_operator" not in text, path
