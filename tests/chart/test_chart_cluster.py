"""The chart's objects on the real control plane (tests/cluster): they apply, and the RBAC
grants exactly what the operator needs, checked by the API server's own authorizer
(`kubectl auth can-i --as=<operator ServiceAccount>`) and by its escalation check (the
operator can hand job pods a status-patching Role, and nothing it does not hold)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import REPO, SCENARIOS, Renderer
from tests.cluster.conftest import cluster, kubectl, namespace  # noqa: F401 - fixtures
from tests.cluster.controlplane.client import Kubectl, KubectlError

pytestmark = pytest.mark.cluster

CUSTOM_GROUPS = ("monitoring.coreos.com/", "kopf.dev/")


def builtin(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if not d["apiVersion"].startswith(CUSTOM_GROUPS)]


def can(k: Kubectl, sa: str, *args: str) -> bool:
    proc = k("auth", "can-i", *args, f"--as={sa}", check=False)
    answer = proc.stdout.strip()
    # Anything but yes/no (an unknown resource, a bad flag) must not count as "no".
    assert answer in {"yes", "no"}, f"can-i {args}: {answer!r} {proc.stderr}"
    return answer == "yes"


def install(k: Kubectl, render: Renderer, values: dict[str, Any], ns: str) -> str:
    docs = builtin(render(values, namespace=ns))
    k.apply(*docs, server_side=True)
    return f"system:serviceaccount:{ns}:{values['fullnameOverride']}"


def status_role(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "sailvl-job", "namespace": ns},
        "rules": [
            {"apiGroups": ["sailvl.io"], "resources": ["trainstages"], "verbs": ["get"]},
            {
                "apiGroups": ["sailvl.io"],
                "resources": ["trainstages/status"],
                "verbs": ["get", "patch"],
            },
        ],
    }


def test_chart_applies_with_least_privilege(
    kubectl: Kubectl,  # noqa: F811
    namespace: str,  # noqa: F811
    render: Renderer,
) -> None:
    kubectl.apply(Path(REPO / "charts" / "sailvl-operator" / "crds"), server_side=True)
    work = kubectl.create_namespace("w")
    values = {"fullnameOverride": f"op-{namespace}", **SCENARIOS["monitoring"]}
    sa = install(kubectl, render, values, namespace)
    try:
        assert kubectl.get("deployment", f"op-{namespace}", namespace)
        for verb in (
            ("create", "jobs.batch"),
            ("delete", "jobs.batch"),
            ("create", "configmaps"),
            ("create", "services"),
            ("watch", "pods"),
            ("create", "events"),
            ("patch", "trainstages.sailvl.io"),
            ("patch", "trainstages.sailvl.io", "--subresource=status"),
            ("create", "evalsuites.sailvl.io"),
            ("create", "roles.rbac.authorization.k8s.io"),
        ):
            assert can(kubectl, sa, *verb, "-n", work), verb
        assert can(kubectl, sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
        assert can(kubectl, sa, "update", "leases.coordination.k8s.io", "-n", namespace)
        for verb in (
            ("get", "secrets"),
            ("delete", "pods"),
            ("create", "deployments.apps"),
            ("create", "curricula.sailvl.io"),
            ("update", "leases.coordination.k8s.io"),
        ):
            assert not can(kubectl, sa, *verb, "-n", work), verb
        assert not can(kubectl, sa, "create", "clusterroles.rbac.authorization.k8s.io")
        assert not can(kubectl, sa, "list", "nodes")
        # The API server lets it create the job pods' status Role (it holds those rights)...
        kubectl("create", "-f", "-", f"--as={sa}", input=yaml.safe_dump(status_role(work)))
        # ...and refuses a Role with rights it lacks (RBAC escalation prevention).
        greedy = status_role(work)
        greedy["metadata"]["name"] = "greedy"
        greedy["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
        with pytest.raises(KubectlError, match="forbidden"):
            kubectl("create", "-f", "-", f"--as={sa}", input=yaml.safe_dump(greedy))
    finally:
        kubectl("delete", "clusterrole,clusterrolebinding", f"op-{namespace}", check=False)


def test_namespaced_scope_is_confined(
    kubectl: Kubectl,  # noqa: F811
    namespace: str,  # noqa: F811
    render: Renderer,
) -> None:
    watched, other = kubectl.create_namespace("w"), kubectl.create_namespace("o")
    values = {
        "fullnameOverride": f"op-{namespace}",
        **SCENARIOS["namespaced-strict"],
        "watchNamespaces": [watched],
    }
    sa = install(kubectl, render, values, namespace)
    assert can(kubectl, sa, "create", "jobs.batch", "-n", watched)
    assert can(kubectl, sa, "patch", "captionjobs.sailvl.io", "--subresource=status", "-n", watched)
    assert not can(kubectl, sa, "create", "jobs.batch", "-n", other)
    assert not can(kubectl, sa, "list", "pods", "--all-namespaces")
    assert not can(kubectl, sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
