"""The generated CRDs: fresh, structural, valid CustomResourceDefinitions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import childnames
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


def _schemas() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for info in KINDS.values():
        crd = yaml.safe_load((ROOT / "crds" / f"{info.singular}.yaml").read_text())
        out.append((info.kind, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))
    return out


def _undescribed(node: dict[str, Any], path: str) -> list[str]:
    """Every property (at any depth, inside arrays and maps too) without a description."""
    bad = []
    for key, child in (node.get("properties") or {}).items():
        if path == "" and key == "metadata":
            continue  # ObjectMeta: the API server allows no description here
        if not str(child.get("description", "")).strip():
            bad.append(f"{path}.{key}")
        bad += _undescribed(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        bad += _undescribed(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        bad += _undescribed(node["additionalProperties"], f"{path}{{}}")
    return bad


def test_every_field_has_a_description() -> None:
    """`kubectl explain` is how users read the API: no field may be undescribed."""
    bad = [f"{kind}{p}" for kind, schema in _schemas() for p in _undescribed(schema, "")]
    assert bad == [], f"{len(bad)} fields without a description:\n" + "\n".join(bad)


def test_scores_and_thresholds_state_their_scale() -> None:
    _, schema = next(s for s in _schemas() if s[0] == "Curriculum")
    spec = schema["properties"]["spec"]["properties"]
    gate = spec["stages"]["items"]["properties"]["gate"]["properties"]
    assert "0-100" in gate["threshold"]["description"]
    _, schema = next(s for s in _schemas() if s[0] == "EvalSuite")
    status = schema["properties"]["status"]["properties"]
    for key in ("scores", "categories", "overall"):
        assert "0-100" in status[key]["description"], key


@pytest.mark.parametrize("info", list(KINDS.values()), ids=list(KINDS))
def test_conditions_are_metav1_conditions(info) -> None:  # type: ignore[no-untyped-def]
    """A list keyed by type; the fields and patterns of metav1.Condition."""
    schema = dict(_schemas())[info.kind]
    conds = schema["properties"]["status"]["properties"]["conditions"]
    assert conds["x-kubernetes-list-type"] == "map"
    assert conds["x-kubernetes-list-map-keys"] == ["type"]
    item = conds["items"]
    assert set(item["required"]) == {"type", "status", "reason", "message", "lastTransitionTime"}
    props = item["properties"]
    reason = re.compile(props["reason"]["pattern"])
    assert props["reason"]["minLength"] == 1
    for ok in ("InvalidSpec", "MaxRestartsExceeded", "A", "Pod_Failed:OOM"):
        assert reason.match(ok), ok
    for bad in ("", "invalid spec", "1Reason", "Reason-", "Reason:"):
        assert not reason.match(bad), bad
    assert props["lastTransitionTime"]["format"] == "date-time"
    assert props["observedGeneration"]["format"] == "int64"
    assert props["status"]["enum"] == ["True", "False", "Unknown"]


@pytest.mark.parametrize("info", list(KINDS.values()), ids=list(KINDS))
def test_printer_columns_show_the_phase_not_the_last_condition(info) -> None:  # type: ignore[no-untyped-def]
    """The last condition in the list is whichever changed last (Suspended after a
    resume), not the state: the columns read status.phase and status.message."""
    columns = {c.name: c.json_path for c in info.columns}
    assert columns["Phase"] == ".status.phase"
    assert columns["Message"] == ".status.message"
    assert not [p for p in columns.values() if ".conditions" in p]


# Short names already taken, each list from its source (update with the versions):
# - BUILTIN: kube-apiserver v1.36.3 discovery (every built-in group; the cluster test
#   tests/cluster/test_crds.py::test_short_names_are_free_on_a_real_api_server checks
#   this list against the live discovery document);
# - add-ons, from their CRDs / kubebuilder markers at the versions in the Go module cache
#   of tests/cluster/controlplane: Kueue v0.17.0 (config/components/crd/bases),
#   Volcano apis v1.14.0, scheduler-plugins v0.34 (coscheduling PodGroup and friends),
#   LeaderWorkerSet v0.8.0, Kubeflow spark-operator v2.5.0 (Kubeflow Trainer v2.2.0,
#   training-operator v1.9.3, mpi-operator v0.8.0 and JobSet v0.11.1 declare none),
#   and ECK's Elasticsearch (es) and Kibana (kb), common next to training clusters.
BUILTIN_SHORT_NAMES = {
    "cm", "cj", "crd", "crds", "cs", "csr", "deploy", "ds", "ep", "ev", "hpa", "ing", "ip",
    "limits", "netpol", "no", "ns", "pc", "pdb", "po", "pv", "pvc", "quota", "rc", "rs",
    "sa", "sc", "sts", "svc", "vac",
}  # fmt: skip
ADDON_SHORT_NAMES = {
    "kueue": {"cq", "queue", "queues", "lq", "flavor", "flavors", "rf", "kwl",
              "kueueworkload", "kueueworkloads"},
    "volcano": {"vcjob", "vj", "cronvcjob", "cronvj", "pg", "podgroup", "podgroup-v1beta1",
                "q", "queue", "queue-v1beta1", "jf", "jt", "hyperjob", "hj", "hn", "nsh",
                "numatopo"},
    "scheduler-plugins": {"ag", "eq", "eqs", "node-res-topo", "nt", "pg", "pgs", "sp"},
    "lws": {"lws"},
    "kubeflow": {"sparkapp", "scheduledsparkapp", "sparkconn"},
    "eck": {"es", "kb"},
}  # fmt: skip


def test_short_names_collide_with_no_builtin_or_addon() -> None:
    ours = [s for info in KINDS.values() for s in info.short_names]
    assert len(ours) == len(set(ours))
    taken = set(BUILTIN_SHORT_NAMES).union(*ADDON_SHORT_NAMES.values())
    assert sorted(set(ours) & taken) == []
    names = {n for i in KINDS.values() for n in (i.plural, i.singular, i.kind.lower())}
    assert not set(ours) & names


def test_immutability_rules_sit_on_the_fields() -> None:
    """A spec-level rule reading oldSelf.x.y fails every update of an object without x
    ("no such key"), so transition rules live on the immutable field, and every field on
    its path is required or defaulted (otherwise removing it would skip the rule)."""
    for info in KINDS.values():
        spec = schema_of_kind(info)
        assert not [r for r in spec.get("x-kubernetes-validations", []) if "oldSelf" in r["rule"]]
        for path in info.immutable:
            node, parts = spec, path.split(".")
            for part in parts:
                assert part in node.get("required", []) or "default" in node["properties"][part], (
                    f"{info.kind} spec.{path}: {part} is neither required nor defaulted"
                )
                node = node["properties"][part]
            assert {"rule": "self == oldSelf", "message": f"{path} is immutable"} in node[
                "x-kubernetes-validations"
            ]


def schema_of_kind(info) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(_schemas())[info.kind]["properties"]["spec"]


@pytest.mark.parametrize(
    ("restarts", "nodes", "limit"), [(3, 1, 59), (9, 10, 59), (10, 10, 58), (100, 4096, 54)]
)
def test_train_name_limit(restarts: int, nodes: int, limit: int) -> None:
    """Job <name>-<attempt> and hostname <name>-<attempt>-<index> within 63 characters."""
    assert childnames.MAX_LABEL - childnames.train_suffix(restarts, nodes) == limit
    name = "a" * limit
    longest = f"{name}-{restarts}-{nodes - 1}"
    assert len(longest) == 63


def test_curriculum_suffix_is_the_longest_step_child() -> None:
    stages = [("pt-align", True), ("a-much-longer-stage-name", False)]
    # stage: -a-much-longer-stage-name-3-0 (1 + 24 + 4); eval: -pt-align-eval-0-0 (18)
    assert childnames.curriculum_suffix(stages, 3, 1, None, False) == 29
    assert childnames.curriculum_suffix([("s", True)], 3, 1, None, True) == 15
    assert childnames.curriculum_suffix([("s", False)], 3, 1, 1000, False) == 14
