"""CRDs: the project's crds/ apply, and the API server enforces a structural schema
(rejection with the schema's message, defaulting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane.client import Kubectl, KubectlError, wait_for

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).resolve().parents[2] / "crds"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.sailvl.io"},
    "spec": {
        "group": "test.sailvl.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 1},
                                    "accelerator": {
                                        "type": "string",
                                        "enum": ["nvidia", "ascend"],
                                        "default": "nvidia",
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def established(kubectl: Kubectl, name: str) -> bool:
    crd = kubectl.get("crd", name) or {}
    conds = crd.get("status", {}).get("conditions", [])
    return any(c["type"] == "Established" and c["status"] == "True" for c in conds)


def widget(name: str, namespace: str, spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "test.sailvl.io/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_schema_rejects_invalid_and_defaults_valid(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(WIDGET_CRD)
    wait_for(
        lambda: established(kubectl, "widgets.test.sailvl.io"), timeout=30, what="CRD Established"
    )
    with pytest.raises(KubectlError) as err:
        kubectl.apply(widget("w0", namespace, {"replicas": 0, "accelerator": "tpu"}))
    msg = err.value.stderr
    assert "spec.replicas" in msg and "greater than or equal to 1" in msg
    assert "spec.accelerator" in msg and 'supported values: "nvidia", "ascend"' in msg
    with pytest.raises(KubectlError, match="spec.replicas: Required value"):
        kubectl.apply(widget("w1", namespace, {}))
    kubectl.apply(widget("w2", namespace, {"replicas": 2}))
    stored = kubectl.get("widget", "w2", namespace) or {}
    assert stored["spec"] == {"replicas": 2, "accelerator": "nvidia"}


def project_crds() -> list[dict[str, Any]]:
    docs = [d for f in sorted(CRDS.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


def test_project_crds_apply_and_reject_a_non_object_spec(kubectl: Kubectl, namespace: str) -> None:
    crds = project_crds()
    if not crds:
        pytest.skip(f"no CRDs generated in {CRDS} yet")
    kubectl.apply(CRDS, server_side=True)
    for crd in crds:
        name = crd["metadata"]["name"]
        wait_for(lambda n=name: established(kubectl, n), timeout=30, what=f"CRD {name} Established")
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        schema = version["schema"]["openAPIV3Schema"]
        if schema.get("properties", {}).get("spec", {}).get("type") != "object":
            continue
        bad = {
            "apiVersion": f"{crd['spec']['group']}/{version['name']}",
            "kind": crd["spec"]["names"]["kind"],
            "metadata": {"name": "invalid", "namespace": namespace},
            "spec": 42,
        }
        with pytest.raises(KubectlError) as err:
            kubectl.apply(bad)
        assert "spec" in err.value.stderr and "must be of type object" in err.value.stderr, name
