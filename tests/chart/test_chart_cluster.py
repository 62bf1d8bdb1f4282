"""The chart's objects on the real control plane (tests/cluster): they apply, and the RBAC
grants exactly what the operator needs, checked by the API server's own authorizer
(`kubectl auth can-i --as=<operator ServiceAccount>`) and by its escalation check (the
operator can bind the job pods' shipped ClusterRole, and nothing else); and the operator
itself, logged in as the chart's ServiceAccount, runs a whole curriculum."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import REPO, SCENARIOS, Renderer
from tests.cluster.conftest import cluster, kubectl, namespace  # noqa: F401 - fixtures
from tests.cluster.controlplane.client import Kubectl, KubectlError
from tests.cluster.operator_driver import drive, operator, phase
from tests.cluster.test_operator import small_curriculum

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
    # The CRDs first (idempotent): `can-i` on a kind the API server does not know says no.
    k.apply(Path(REPO / "charts" / "sailvl-operator" / "crds"), server_side=True)
    docs = builtin(render(values, namespace=ns))
    k.apply(*docs, server_side=True)
    return f"system:serviceaccount:{ns}:{values['fullnameOverride']}"


def binding(ns: str, cluster_role: str, name: str = "sailvl-job") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_role,
        },
        "subjects": [{"kind": "ServiceAccount", "name": "sailvl-job", "namespace": ns}],
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
            ("create", "rolebindings.rbac.authorization.k8s.io"),
            ("create", "serviceaccounts"),
        ):
            assert can(kubectl, sa, *verb, "-n", work), verb
        assert can(kubectl, sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
        lease = f"leases.coordination.k8s.io/op-{namespace}"
        assert can(kubectl, sa, "update", lease, "-n", namespace)
        assert not can(kubectl, sa, "update", "leases.coordination.k8s.io/other", "-n", namespace)
        for verb in (
            ("get", "secrets"),
            ("delete", "pods"),
            ("create", "deployments.apps"),
            ("create", "curricula.sailvl.io"),
            ("update", "leases.coordination.k8s.io"),
            ("create", "roles.rbac.authorization.k8s.io"),
            ("delete", "configmaps"),
        ):
            assert not can(kubectl, sa, *verb, "-n", work), verb
        assert not can(kubectl, sa, "create", "clusterroles.rbac.authorization.k8s.io")
        assert not can(kubectl, sa, "list", "nodes")
        # The API server lets it bind the job pods' shipped ClusterRole (`bind`, by name)...
        job_role = f"op-{namespace}-job"
        kubectl("create", "-f", "-", f"--as={sa}", input=yaml.safe_dump(binding(work, job_role)))
        # ...and refuses to bind any other role (RBAC escalation prevention).
        with pytest.raises(KubectlError, match="forbidden"):
            greedy = binding(work, "edit", name="greedy")
            kubectl("create", "-f", "-", f"--as={sa}", input=yaml.safe_dump(greedy))
    finally:
        kubectl("delete", "clusterrole,clusterrolebinding", f"op-{namespace}", check=False)
        for suffix in ("job", "editor", "viewer"):
            kubectl("delete", "clusterrole", f"op-{namespace}-{suffix}", check=False)


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


def test_operator_runs_a_curriculum_as_the_chart_service_account(
    cluster: Any,  # noqa: F811
    kubectl: Kubectl,  # noqa: F811
    namespace: str,  # noqa: F811
    render: Renderer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not an admin kubeconfig: a token of the chart's ServiceAccount, so a grant the
    operator needs and the chart lacks fails this test (the handler errors and the
    curriculum never finishes)."""
    from sailvl_operator import children

    kubectl.apply(Path(REPO / "charts" / "sailvl-operator" / "crds"), server_side=True)
    work = kubectl.create_namespace("w")
    full = f"op-{namespace}"
    install(kubectl, render, {"fullnameOverride": full}, namespace)
    try:
        token = kubectl("create", "token", full, "-n", namespace, "--duration=1h").stdout.strip()
        cfg = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        for user in cfg["users"]:
            user["user"] = {"token": token}
        sa_config = tmp_path / "operator-sa.kubeconfig"
        sa_config.write_text(yaml.safe_dump(cfg))
        # What the chart's Deployment sets (SAILVL_JOB_CLUSTERROLE): bind, never a Role.
        job_role = f"{full}-job"
        monkeypatch.setattr(
            children, "DEFAULTS", dataclasses.replace(children.DEFAULTS, job_cluster_role=job_role)
        )
        kubectl.apply(small_curriculum("rbac", work))
        with operator(sa_config, work):
            drive(
                kubectl,
                work,
                lambda: phase(kubectl, "curriculum", "rbac", work) in ("Succeeded", "Failed"),
                scores={"synth-ocr": 55.0, "synth-mcq": 40.0, "synth-yesno": 70.0},
            )
        assert phase(kubectl, "curriculum", "rbac", work) == "Succeeded"
        rb = kubectl.get("rolebinding", "sailvl-job", work)
        assert rb is not None and rb["roleRef"]["name"] == job_role
        assert kubectl.get("role", "sailvl-job", work) is None
    finally:
        kubectl("delete", "clusterrole,clusterrolebinding", full, check=False)
        for suffix in ("job", "editor", "viewer", "crd-discovery"):
            kubectl("delete", "clusterrole,clusterrolebinding", f"{full}-{suffix}", check=False)


def test_namespaced_scope_binds_the_job_role_only_where_it_watches(
    kubectl: Kubectl,  # noqa: F811
    namespace: str,  # noqa: F811
    render: Renderer,
) -> None:
    """In scope "namespaces" the `bind` grant sits in each watched namespace's Role: the
    API server's escalation check honours it there and nowhere else."""
    watched, other = kubectl.create_namespace("w"), kubectl.create_namespace("o")
    full = f"op-{namespace}"
    values = {"fullnameOverride": full, **SCENARIOS["namespaced"], "watchNamespaces": [watched]}
    sa = install(kubectl, render, values, namespace)
    try:
        kubectl(
            "create", "-f", "-", f"--as={sa}", input=yaml.safe_dump(binding(watched, f"{full}-job"))
        )
        with pytest.raises(KubectlError, match="forbidden"):
            kubectl(
                "create",
                "-f",
                "-",
                f"--as={sa}",
                input=yaml.safe_dump(binding(other, f"{full}-job")),
            )
    finally:
        for suffix in ("job", "editor", "viewer", "crd-discovery"):
            kubectl("delete", "clusterrole,clusterrolebinding", f"{full}-{suffix}", check=False)
