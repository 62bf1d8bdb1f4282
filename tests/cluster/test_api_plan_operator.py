"""The operator refuses, before any child exists, what the trainer would refuse at
start-up (the flagship example as it was: global batch 1920 over 32 x 8 workers), with
the message `sailvl validate` prints, and posts SuspiciousSpec warning events for a gate
threshold written as a fraction."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane.client import wait_for
from tests.cluster.operator_driver import get, operator, phase
from tests.cluster.test_operator import crds, standalone_stage  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster

EXAMPLE = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "examples" / "curriculum.yaml").read_text()
)


def _curriculum(name: str, ns: str) -> dict[str, Any]:
    obj = copy.deepcopy(EXAMPLE)
    obj["metadata"] = {"name": name, "namespace": ns}
    return obj


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    conds = obj.get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Ready"), {})


def _events(k: Any, ns: str, name: str) -> list[dict[str, Any]]:
    sel = f"involvedObject.name={name}"
    return k.json("get", "events", "-n", ns, "--field-selector", sel)["items"]  # type: ignore[no-any-return]


def test_plan_errors_are_invalid_before_any_child(cluster: Any, crds: None, namespace: str) -> None:  # noqa: F811
    k, ns = cluster.kubectl, namespace
    recipe = _curriculum("recipe", ns)
    recipe["spec"]["stages"][0].pop("overrides")  # the example as it was
    odd = standalone_stage("odd", ns, globalBatch=6)  # 6 samples over 2 x 2 workers
    warned = _curriculum("warned", ns)
    warned["spec"]["stages"][0]["gate"]["threshold"] = 0.2
    with operator(cluster.kubeconfig, ns):
        k.apply(recipe, odd, warned)
        wait_for(
            lambda: (
                phase(k, "curriculum", "recipe", ns) == "Failed"
                and phase(k, "trainstage", "odd", ns) == "Failed"
            ),
            timeout=60,
            what="InvalidSpec of recipe and odd",
        )
        wait_for(
            lambda: any(e["reason"] == "SuspiciousSpec" for e in _events(k, ns, "warned")),
            timeout=60,
            what="SuspiciousSpec event of warned",
        )
    ready = _ready(get(k, "curriculum", "recipe", ns))
    assert ready["reason"] == "InvalidSpec", ready
    assert (
        "spec.stages[0].globalBatch: globalBatch 1920 does not divide over 256"
        in (ready["message"])
    )
    assert "1792 or 2048" in ready["message"] and "nodes 30 or 40" in ready["message"]
    label = "sailvl.io/curriculum=recipe"
    assert k.json("get", "captionjobs,trainstages,evalsuites", "-n", ns, "-l", label)["items"] == []
    ready = _ready(get(k, "trainstage", "odd", ns))
    assert ready["reason"] == "InvalidSpec" and "spec.globalBatch" in ready["message"], ready
    assert k.json("get", "jobs", "-n", ns, "-l", "sailvl.io/name=odd")["items"] == []
    (event,) = [e for e in _events(k, ns, "warned") if e["reason"] == "SuspiciousSpec"]
    assert event["type"] == "Warning"
    assert event["message"].startswith("spec.stages[0].gate.threshold: 0.2 on idl-wds")
