"""Fixtures of the chart tests: `helm` (a real Helm, see helpers.py) and `render`."""

from __future__ import annotations

import pytest

from tests.chart.helpers import Helm, Renderer, find_helm, missing_tool


@pytest.fixture(scope="session")
def helm() -> Helm:
    found = find_helm()
    if found is None:
        missing_tool("no helm: helm-python-sdk does not load and no helm binary was built")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def render(helm: Helm) -> Renderer:
    return Renderer(helm)
