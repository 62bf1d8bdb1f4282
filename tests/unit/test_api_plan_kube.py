"""Kubernetes value rules applied before a child is built (sailvl.api.kube): quantities
parse as resource.Quantity does, and the other rules accept what the API server accepts."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sailvl.api import kube, podspec


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", 4), (4, 4), ("500m", Fraction(1, 2)), ("1.5Gi", 3 * 2**29), ("16Gi", 16 * 2**30),
        ("2e3", 2000), ("1E3", 1000), ("1E", 10**18), ("+1", 1), (".5", Fraction(1, 2)),
        ("5.", 5), ("1Ki", 1024), ("1k", 1000), ("2M", 2 * 10**6), ("1e-3", Fraction(1, 1000)),
        ("0", 0), ("-1", -1),
    ],
)  # fmt: skip
def test_quantities_parse(text: str | int, value: Fraction | int) -> None:
    assert kube.parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["16GB", "1.5.5", " 1", "1 ", "", "1e", "Mi", "1 Mi", "--1", "1KiB", "0x10", "1m2"]
)
def test_bad_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a quantity"):
        kube.parse_quantity(text)


def test_requests_and_limits_compare_across_units() -> None:
    assert kube.resources({"memory": "1024Mi"}, {"memory": "1Gi"}) == []
    assert kube.resources({"cpu": "1500m"}, {"cpu": "2"}) == []
    ((path, msg),) = kube.resources({"memory": "1Gi"}, {"memory": "1G"})  # 2^30 > 10^9
    assert path == "requests[memory]" and "is above limits[memory]" in msg
    assert kube.resources({"x.io/dev": 2}, {"x.io/dev": 2}) == []
    huge = {"hugepages-2Mi": "1Gi"}
    assert kube.resources({**huge, "memory": "2Gi"}, huge) == []
    assert [m for _, m in kube.resources(huge, huge)] == [
        "hugepages need a cpu or memory request or limit as well"
    ]
    assert kube.resources({}, {"hugepages-2x": "1Gi"})[0][0] == "limits[hugepages-2x]"


@pytest.mark.parametrize(
    "tol",
    [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists"},
        {"key": "pool", "operator": "Equal", "value": "a100", "effect": "NoSchedule"},
        {"key": "pool", "value": "a100"},  # operator defaults to Equal
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
         "effect": "NoExecute", "tolerationSeconds": 30},
    ],
)  # fmt: skip
def test_valid_tolerations_pass(tol: dict) -> None:
    assert podspec.toleration(tol) == []


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "HF_HOME", "value": "/cache"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "a.b-c_d"},
    ],
)
def test_valid_env_entries_pass(entry: dict) -> None:
    assert podspec.env_var(entry) == []


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"fieldRef": {"fieldPath": "status.nodeIP"}}, ".valueFrom.fieldRef.fieldPath"),
        ({"fieldRef": {"fieldPath": "metadata.labels[x]"}}, ".valueFrom.fieldRef.fieldPath"),
        ({"resourceFieldRef": {"resource": "limits.gpu"}}, ".valueFrom.resourceFieldRef.resource"),
        ({"configMapKeyRef": {"key": "k"}}, ".valueFrom.configMapKeyRef.name"),
        ({"secretKeyRef": {"name": "s", "key": "k"}, "fieldRef": {}}, ".valueFrom"),
    ],
)
def test_env_sources_the_api_server_refuses(source: dict, field: str) -> None:
    problems = podspec.env_var({"name": "X", "valueFrom": source})
    assert [p for p, _ in problems] == [field]


def test_env_sources_the_api_server_accepts() -> None:
    for source in (
        {"fieldRef": {"fieldPath": "metadata.annotations['a.b/c']"}},
        {"resourceFieldRef": {"resource": "limits.memory"}},
        {"resourceFieldRef": {"resource": "requests.hugepages-2Mi"}},
    ):
        assert podspec.env_var({"name": "X", "valueFrom": source}) == []


@pytest.mark.parametrize(
    ("key", "ok"),
    [("team", True), ("example.com/team", True), ("a/b/c", False), ("-x", False),
     ("x" * 63, True), ("x" * 64, False), ("UP.example.com/x", False)],
)  # fmt: skip
def test_label_keys(key: str, ok: bool) -> None:
    assert (kube.qualified_name(key) is None) == ok


NODE_TERM = {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In",
                                   "values": ["H100"]}]}  # fmt: skip
GOOD_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [NODE_TERM]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 10,
                "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
            }
        ],
    },
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"a": "b"}}}
        ]
    },
}


def test_affinity_the_api_server_accepts() -> None:
    assert podspec.affinity(GOOD_AFFINITY) == []


@pytest.mark.parametrize(
    ("expr", "field"),
    [
        ({"key": "a b", "operator": "In", "values": ["x"]}, ".key"),
        ({"key": "k", "operator": "Equals", "values": ["x"]}, ".operator"),
        ({"key": "k", "operator": "In"}, ".values"),
        ({"key": "k", "operator": "Exists", "values": ["x"]}, ".values"),
        ({"key": "k", "operator": "Gt", "values": ["x"]}, ".values"),
    ],
)
def test_node_affinity_expressions(expr: dict, field: str) -> None:
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}  # fmt: skip
    ((path, _),) = podspec.affinity(aff)
    assert path.endswith(f"nodeSelectorTerms[0].matchExpressions[0]{field}")


def test_pod_affinity_needs_a_topology_key() -> None:
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}
    ((path, msg),) = podspec.affinity(aff)
    assert path.endswith("[0].topologyKey") and msg == "required"
