"""`helm lint --strict`, `helm template` and schema validation of the chart for its
default values and each toggle, plus the properties a platform team relies on:
security settings, least-privilege RBAC, the kopf command line and the CRD toggle."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart.helpers import CHART, NAMESPACE, REPO, SCENARIOS, Helm, Renderer, find

K8S_VERSION = "1.30.0"  # the oldest minor the chart claims (kubeVersion >=1.30)
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_lint_strict(helm: Helm, scenario: str) -> None:
    assert helm.lint(CHART, SCENARIOS[scenario]) == []


def test_lint_strict_catches_a_broken_template(helm: Helm, tmp_path: Path) -> None:
    # Guards the linter wiring itself: a template error must come back as a finding.
    broken = tmp_path / "sailvl-operator"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("kind: {{ .Values.nope.missing }}\n")
    assert helm.lint(broken, {}) != []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rendered_manifests_validate_strictly(render: Renderer, scenario: str) -> None:
    docs = render(SCENARIOS[scenario])
    assert find(docs, "Deployment"), "every scenario renders the operator"
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            check_custom(doc)
            continue
        # Raises ValidationError (with the path) on an unknown or mistyped field.
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def check_custom(doc: dict[str, Any]) -> None:
    """kubernetes-validate has no schema for these kinds: check their required shape."""
    kind, spec = doc["kind"], doc.get("spec", {})
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    if kind == "ServiceMonitor":
        assert spec["selector"]["matchLabels"] and spec["endpoints"]
        assert all(e["port"] == "metrics" and e["honorLabels"] is True for e in spec["endpoints"])
    elif kind == "PodMonitor":
        assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "sailvl"}
        assert spec["podMetricsEndpoints"][0]["port"] == "metrics"
    else:
        assert kind == "PrometheusRule", kind
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
                assert rule["labels"]["severity"] in {"critical", "warning", "info"}
                if "for" in rule:
                    assert re.fullmatch(r"\d+[smh]", rule["for"])


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = find(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return container


def test_operator_pod_is_locked_down(render: Renderer) -> None:
    docs = render({})
    (deploy,) = find(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    c = operator_container(docs)
    sc = c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp"}
    probe = c["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 9090, "health": 8080}


def test_kopf_command_line_per_scope(render: Renderer) -> None:
    c = operator_container(render({}))
    assert c["command"] == ["kopf"]
    args = c["args"]
    assert args[0] == "run" and args[-2:] == ["-m", "sailvl_operator.main"]
    assert "--standalone" in args and "--all-namespaces" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    c = operator_container(render(SCENARIOS["namespaced"]))
    assert "--all-namespaces" not in c["args"]
    assert [a for a in c["args"] if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    c = operator_container(render(SCENARIOS["ha"]))
    assert "--standalone" in c["args"]  # leader election is the operator's own Lease


def test_an_unknown_scope_is_refused(helm: Helm) -> None:
    with pytest.raises(Exception, match="scope"):
        helm.template(CHART, {"scope": "everywhere"})


def rules_of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for role in find(docs, kind) for r in role["rules"]]


def grants(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {
        v
        for r in rules
        if group in r["apiGroups"] and resource in r["resources"]
        for v in r["verbs"]
    }


def test_rbac_is_least_privilege_cluster_scope(render: Renderer) -> None:
    docs = render({})
    for r in rules_of(docs, "ClusterRole"):  # every ClusterRole the chart ships
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in r[field], f"wildcard in {r}"
    (operator_role,) = find(docs, "ClusterRole", "sailvl-sailvl-operator")
    rules = operator_role["rules"]
    for r in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in r[field], f"wildcard in {r}"
    assert grants(rules, "", "secrets") == set()
    assert grants(rules, "", "pods") == {"get", "list", "watch"}
    assert grants(rules, "batch", "jobs") >= {"create", "delete", "watch"}
    assert grants(rules, "sailvl.io", "trainstages/status") >= {"patch"}
    assert grants(rules, "sailvl.io", "curricula") == {"get", "list", "watch", "patch", "update"}
    # An Experiment creates TrainStage / EvalSuite trials; nobody creates Experiments but users.
    assert grants(rules, "sailvl.io", "experiments") == {"get", "list", "watch", "patch", "update"}
    assert grants(rules, "sailvl.io", "experiments/status") == {"get", "patch", "update"}
    assert "create" in grants(rules, "sailvl.io", "trainstages")  # the Curriculum's children
    assert grants(rules, "", "events") == {"create", "patch"}
    assert grants(rules, "rbac.authorization.k8s.io", "rolebindings") == {"create"}
    assert grants(rules, "kopf.dev", "clusterkopfpeerings") == set()  # --standalone
    (binding,) = find(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    lease_rules = rules_of(docs, "Role")
    assert grants(lease_rules, "coordination.k8s.io", "leases") == {"get", "create", "update"}


def test_rbac_namespaced_scope_grants_nothing_cluster_wide(render: Renderer) -> None:
    docs = render(SCENARIOS["namespaced-strict"])
    assert find(docs, "ClusterRole") == [] and find(docs, "ClusterRoleBinding") == []
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in find(docs, "Role")}
    assert (NAMESPACE, "sailvl-sailvl-operator") in roles
    rules = rules_of(docs, "Role")
    assert grants(rules, "rbac.authorization.k8s.io", "rolebindings") == set()  # jobAccess off
    docs = render(SCENARIOS["namespaced"])
    watched = {b["metadata"]["namespace"] for b in find(docs, "RoleBinding")}
    assert watched == {"team-a", "team-b", NAMESPACE}  # the last holds only the lease
    crd_role = find(docs, "ClusterRole", "sailvl-sailvl-operator-crd-discovery")[0]
    others = {r["metadata"]["name"] for r in find(docs, "ClusterRole")} - {
        crd_role["metadata"]["name"]
    }
    # The job pods' role and the aggregated user roles grant nothing to the operator.
    assert others == {f"sailvl-sailvl-operator-{n}" for n in ("job", "editor", "viewer")}
    assert crd_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]


def test_volcano_adds_only_its_grants(render: Renderer) -> None:
    docs = render(SCENARIOS["volcano-kueue"])
    assert "create" in grants(rules_of(docs, "ClusterRole"), "scheduling.volcano.sh", "podgroups")
    env = {e["name"]: e.get("value") for e in operator_container(docs)["env"]}
    assert env["SAILVL_KUEUE_QUEUE_NAME"] == "team-a"
    assert env["SAILVL_SCHEDULER_NAME"] == "volcano" and env["SAILVL_VOLCANO_QUEUE"] == "default"
    env = {e["name"] for e in operator_container(render({}))["env"]}
    assert "SAILVL_SCHEDULER_NAME" not in env


def test_monitoring_objects_follow_toggles(render: Renderer) -> None:
    kinds = {d["kind"] for d in render({})}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & kinds == set()
    assert {"Service", "ConfigMap"} <= kinds
    docs = render(SCENARIOS["monitoring"])
    (svc,) = find(docs, "Service")
    (sm,) = find(docs, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert svc["spec"]["selector"] == sm["spec"]["selector"]["matchLabels"]
    (pm,) = find(docs, "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    (pm,) = find(render(SCENARIOS["podmonitor-namespaces"]), "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    (cm,) = find(render({}), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert find(render(SCENARIOS["no-dashboard"]), "ConfigMap") == []


SAMPLE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "samples.sailvl.io"},
    "spec": {
        "group": "sailvl.io",
        "scope": "Namespaced",
        "names": {"kind": "Sample", "plural": "samples", "singular": "sample"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            }
        ],
    },
}


def test_crds_as_templates(render: Renderer, tmp_path: Path) -> None:
    # Render a copy whose crds/ holds the generated CRDs, or a sample one while the
    # generated copies are not there yet, so the template path is always exercised.
    chart = tmp_path / "sailvl-operator"
    shutil.copytree(CHART, chart)
    if not list(chart.glob("crds/*.yaml")):
        (chart / "crds").mkdir(exist_ok=True)
        (chart / "crds" / "samples.yaml").write_text(yaml.safe_dump(SAMPLE_CRD))
    sources = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in chart.glob("crds/*.yaml")}
    assert find(render({}, chart), "CustomResourceDefinition") == []
    docs = render(SCENARIOS["crd-templates"], chart)
    crds = find(docs, "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in crds} == sources
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
    docs = render({"crds": {"asTemplates": True, "keep": False}}, chart)
    assert all("annotations" not in c["metadata"] for c in find(docs, "CustomResourceDefinition"))


def test_chart_crds_are_the_generated_copies() -> None:
    generated = {p.name: p.read_text() for p in (REPO / "crds").glob("*.yaml")}
    in_chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert in_chart == generated, "copy crds/*.yaml into charts/sailvl-operator/crds/"


def test_every_values_key_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not m:
            continue
        above = lines[i - 1].strip() if i else ""
        if not (above.startswith("#") or "#" in line.split(":", 1)[1]):
            undocumented.append(f"line {i + 1}: {m.group(2)}")
    assert undocumented == []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kopf_accepts_the_rendered_command_line(render: Renderer, scenario: str) -> None:
    # Parse with kopf's own click command: an option kopf does not know fails here.
    from kopf.cli import main as kopf_main

    c = operator_container(render(SCENARIOS[scenario]))
    assert c["command"] == ["kopf"] and c["args"][0] == "run"
    params = kopf_main.get_command(None, "run").make_context("run", c["args"][1:]).params
    assert params["modules"] == ("sailvl_operator.main",)
    assert params["clusterwide"] == (SCENARIOS[scenario].get("scope", "cluster") == "cluster")
    assert params["standalone"] and not params["peering_name"]
