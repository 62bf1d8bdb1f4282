"""CRDs: the project's crds/ apply, and the API server enforces their schema: rejection
with the schema's message, defaulting, CEL immutability and child-name rules, the
metav1.Condition shape of status.conditions, printer columns and free short names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import childnames
from sailvl.api.kinds import KINDS
from tests.cluster.controlplane.client import Kubectl, KubectlError, wait_for
from tests.unit.test_crds import BUILTIN_SHORT_NAMES

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


# -- the project's CRDs on the real API server ------------------------------------------
# Only the API server takes part (no operator): the tests write spec and status the way
# a user and the operator would and read back what the server stores or refuses.


@pytest.fixture(scope="module")
def sailvl_crds(cluster: Any) -> None:
    kubectl = cluster.kubectl
    kubectl.apply(CRDS, server_side=True)
    for crd in project_crds():
        name = crd["metadata"]["name"]
        wait_for(lambda n=name: established(kubectl, n), timeout=30, what=f"CRD {name} Established")


def obj(kind: str, name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def stage_spec(**extra: Any) -> dict[str, Any]:
    """A TrainStage spec without ``model`` (the API server defaults it)."""
    return {
        "preset": "sft-knowledge",
        "data": [{"uri": "s3://data/sft"}],
        "budget": {"steps": 4},
        "globalBatch": 16,
        "devicesPerNode": 1,
        "output": "s3://runs/out",
        **extra,
    }


def patch(kubectl: Kubectl, kind: str, name: str, ns: str, body: Any, **kw: str) -> None:
    args = ["patch", kind, name, "-n", ns, "--type", kw.get("type", "merge"), "-p"]
    extra = ["--subresource=status"] if kw.get("status") else []
    kubectl(*args, json.dumps(body), *extra)


def condition(type_: str, status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        **extra,
    }


def refused(kubectl: Kubectl, kind: str, name: str, ns: str, body: Any, **kw: str) -> str:
    """Patch, expecting the API server to refuse; return its message."""
    with pytest.raises(KubectlError) as err:
        patch(kubectl, kind, name, ns, body, **kw)
    return err.value.stderr


def test_trainstage_without_model_updates_and_keeps_immutable_fields(
    kubectl: Kubectl, namespace: str, sailvl_crds: None
) -> None:
    """A spec-level rule reading oldSelf.model.preset made every update of a TrainStage
    without ``model`` fail ("no such key: model"), the operator's status writes too."""
    ns = namespace
    kubectl.apply(obj("TrainStage", "nomodel", ns, stage_spec()))
    patch(kubectl, "trainstage", "nomodel", ns, {"spec": {"suspend": True}})
    status = {
        "phase": "Running",
        "message": "2 pods running",
        "restarts": 0,
        "conditions": [
            condition("Ready", "True", "JobRunning", observedGeneration=2),
            condition("Suspended", "False", "Resumed"),
            condition("Running", "True", "JobRunning"),
        ],
    }
    patch(kubectl, "trainstage", "nomodel", ns, {"status": status}, status="1")
    stored = kubectl.get("trainstage", "nomodel", ns) or {}
    assert stored["spec"]["suspend"] is True and stored["status"]["phase"] == "Running"
    assert stored["spec"]["model"] == {"preset": "2b"}  # defaulted, so the rule applies
    # The printer columns show the phase, not the last condition in the list.
    table = kubectl("get", "trainstage", "nomodel", "-n", ns, "-o", "wide").stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:2] == ["NAME", "PHASE"] and "MESSAGE" in header
    assert row.split()[1] == "Running" and row.endswith("2 pods running")

    msg = refused(kubectl, "trainstage", "nomodel", ns, {"spec": {"output": "s3://x/y"}})
    assert "output is immutable" in msg
    msg = refused(kubectl, "trainstage", "nomodel", ns, {"spec": {"model": {"preset": "8b"}}})
    assert "model.preset is immutable" in msg

    # Removing model from an 8b stage would silently make it 2b: refused as well.
    kubectl.apply(obj("TrainStage", "eightb", ns, stage_spec(model={"preset": "8b"})))
    remove = [{"op": "remove", "path": "/spec/model"}]
    msg = refused(kubectl, "trainstage", "eightb", ns, remove, type="json")
    assert "model.preset is immutable" in msg


def curriculum_spec(**extra: Any) -> dict[str, Any]:
    return {
        "storage": {"uri": "s3://runs/cur"},
        "stages": [
            {"name": "sft", "preset": "sft-knowledge", "data": [{"uri": "s3://d/a"}],
             "budget": {"steps": 2}, "globalBatch": 16}
        ],
        **extra,
    }  # fmt: skip


def test_curriculum_without_model_updates_and_storage_is_immutable(
    kubectl: Kubectl, namespace: str, sailvl_crds: None
) -> None:
    ns = namespace
    kubectl.apply(obj("Curriculum", "cur", ns, curriculum_spec()))
    patch(kubectl, "curriculum", "cur", ns, {"spec": {"evalDataRoot": "s3://bench"}})
    status = {"phase": "Running", "conditions": [condition("Running", "True", "StepStarted")]}
    patch(kubectl, "curriculum", "cur", ns, {"status": status}, status="1")
    msg = refused(kubectl, "curriculum", "cur", ns, {"spec": {"storage": {"uri": "s3://b"}}})
    assert "storage.uri is immutable" in msg


def test_conditions_follow_metav1_condition(
    kubectl: Kubectl, namespace: str, sailvl_crds: None
) -> None:
    ns = namespace
    kubectl.apply(obj("TrainStage", "conds", ns, stage_spec()))
    bad = {
        "empty reason": [condition("Ready", "False", "")],
        "reason not CamelCase": [condition("Ready", "False", "invalid spec")],
        "no lastTransitionTime": [{"type": "Ready", "status": "True", "reason": "Ok", "message": ""}],
        "time not date-time": [condition("Ready", "True", "Ok", lastTransitionTime="yesterday")],
        "type twice": [condition("Ready", "True", "Ok"), condition("Ready", "False", "No")],
    }  # fmt: skip
    for why, conds in bad.items():
        msg = refused(kubectl, "trainstage", "conds", ns, {"status": {"conditions": conds}},
                      status="1")  # fmt: skip
        assert "status.conditions" in msg, why
    good = [condition("Ready", "False", "InvalidSpec", message="spec.nodes: too many")]
    patch(kubectl, "trainstage", "conds", ns, {"status": {"conditions": good}}, status="1")


def test_evalsuite_needs_benchmarks_or_suite(
    kubectl: Kubectl, namespace: str, sailvl_crds: None
) -> None:
    ns = namespace
    spec = {"model": "s3://m/final", "output": "s3://o/e", "dataRoot": "s3://bench"}
    kubectl.apply(obj("EvalSuite", "suite-only", ns, {**spec, "suite": "opensource"}))
    with pytest.raises(KubectlError, match="set benchmarks or suite"):
        kubectl.apply(obj("EvalSuite", "neither", ns, spec))


def name_of(length: int) -> str:
    return ("n" + "x" * length)[:length]


def test_child_names_fit_in_63_characters(
    kubectl: Kubectl, namespace: str, sailvl_crds: None
) -> None:
    """Each kind's longest generated name is <= 63 characters, or the server refuses the
    parent with the longest name allowed for its spec."""
    ns = namespace
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("TrainStage", stage_spec(), 63 - childnames.train_suffix(3, 1)),
        ("TrainStage", stage_spec(nodes=16, maxRestarts=10), 63 - childnames.train_suffix(10, 16)),
        (
            "CaptionJob",
            {"input": "s3://i", "output": "s3://o", "model": {"uri": "s3://m"},
             "parallelism": 100},
            63 - childnames.sharded_suffix(100),
        ),
        (
            "EvalSuite",
            {"model": "s3://m", "output": "s3://o", "suite": "opensource", "dataRoot": "s3://b"},
            63 - childnames.sharded_suffix(1),
        ),
        (
            "Curriculum",
            curriculum_spec(finalEval={"suite": "opensource"}),
            63 - childnames.curriculum_suffix([("sft", False)], 3, 1, None, True),
        ),
        (
            "Curriculum",
            curriculum_spec(defaults={"nodes": 100}),
            63 - childnames.curriculum_suffix([("sft", False)], 3, 100, None, False),
        ),
    ]  # fmt: skip
    assert [c[2] for c in cases] == [59, 57, 58, 59, 48, 54]
    for kind, spec, limit in cases:
        kubectl.apply(obj(kind, name_of(limit), ns, spec))
        with pytest.raises(KubectlError) as err:
            kubectl.apply(obj(kind, name_of(limit + 1), ns, spec))
        assert f"metadata.name may be at most {limit} characters" in err.value.stderr, kind
    # A Service name is a DNS-1035 label; pod hostnames are DNS-1123 labels.
    for bad in ("st.1", "1st"):
        with pytest.raises(KubectlError, match="DNS-1035 label"):
            kubectl.apply(obj("TrainStage", bad, ns, stage_spec()))
    with pytest.raises(KubectlError, match="DNS-1123 label"):
        kubectl.apply(obj("EvalSuite", "e.1", ns, cases[3][1]))


def discovery(kubectl: Kubectl) -> list[dict[str, Any]]:
    """Every resource the API server serves (kubectl api-resources: one discovery pass)."""
    resources: list[dict[str, Any]] = kubectl.json("api-resources")["resources"]
    return resources


def test_short_names_are_free_on_a_real_api_server(kubectl: Kubectl, sailvl_crds: None) -> None:
    """Our short names against every name the live API server knows, and the pinned
    built-in list of tests/unit/test_crds.py against its discovery."""
    crd_groups = {c["spec"]["group"] for c in kubectl.json("get", "crd")["items"]}
    builtin: set[str] = set()
    others: set[str] = set()
    for res in discovery(kubectl):
        group = res.get("group", "")  # "" is the core group
        if group == "sailvl.io":
            continue
        names = {res["name"], res.get("singularName", ""), *res.get("shortNames", [])}
        others |= names - {""}
        if group not in crd_groups:
            builtin |= set(res.get("shortNames", []))
    assert builtin == BUILTIN_SHORT_NAMES
    ours = {s for info in KINDS.values() for s in info.short_names}
    assert ours & others == set()
    listed = kubectl("get", "ts,capjob,evs,cur", "-A", "-o", "name").stdout.split()
    assert all(n.split("/")[0].endswith(".sailvl.io") for n in listed), listed


def test_kubectl_explain_shows_the_descriptions(kubectl: Kubectl, sailvl_crds: None) -> None:
    """The descriptions reach users: kubectl explain reads them from the server's OpenAPI."""
    out = kubectl("explain", "curricula.spec.stages.gate.threshold").stdout
    assert "0-100 scale" in out
    out = kubectl("explain", "trainstages.spec.maxRestarts").stdout
    assert "MaxRestartsExceeded" in out
