"""The chart as a platform team runs it on a shared production cluster (issue 15,
section 6): two replicas with leader election, a readiness probe and a
PodDisruptionBudget; RBAC without cluster-wide Role creation (a shipped ClusterRole the
operator may only bind) and aggregated editor/viewer roles; kubeVersion, NOTES.txt, a
values schema, an optional NetworkPolicy; the job-pod defaults of the operator."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart.helpers import CHART, Helm, Renderer, find
from tests.chart.test_chart import grants, operator_container, rules_of

FULL = "sailvl-sailvl-operator"


def _env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in operator_container(docs)["env"]}


def test_kube_version_floor_covers_what_the_chart_uses() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    # backoffLimitPerIndex (Jobs, beta 1.29) and admissionregistration.k8s.io/v1
    # ValidatingAdmissionPolicy (GA 1.30).
    assert chart["kubeVersion"] == ">=1.30.0-0"


def test_two_replicas_elect_a_leader_and_keep_one_up(render: Renderer) -> None:
    docs = render({"operator": {"replicas": 2}})
    (deploy,) = find(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    env = _env(docs)
    assert env["SAILVL_LEADER_ELECTION"] == "1"
    assert env["SAILVL_LEADER_ELECTION_LEASE"] == FULL
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["SAILVL_STANDBY_HEALTH_PORT"] == "8080"  # liveness while standing by
    c = operator_container(docs)
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--standalone" in c["args"]  # kopf's own peering is not leader election
    (pdb,) = find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        deploy["spec"]["template"]["metadata"]["labels"].items()
    )
    lease = [r for role in find(docs, "Role", f"{FULL}-lease") for r in role["rules"]]
    assert grants(lease, "coordination.k8s.io", "leases") == {"get", "update", "create"}
    named = [r for r in lease if "update" in r["verbs"]]
    assert named and all(r["resourceNames"] == [FULL] for r in named)
    assert find(render({}), "PodDisruptionBudget") == []  # one replica: nothing to keep up


def test_rbac_binds_a_shipped_cluster_role_instead_of_creating_roles(render: Renderer) -> None:
    docs = render({})
    rules = find(docs, "ClusterRole", FULL)[0]["rules"]
    assert grants(rules, "rbac.authorization.k8s.io", "roles") == set()
    assert grants(rules, "rbac.authorization.k8s.io", "rolebindings") == {"create"}
    bind = [r for r in rules if "bind" in r["verbs"]]
    assert bind == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": [f"{FULL}-job"],
        }
    ]
    (job_role,) = find(docs, "ClusterRole", f"{FULL}-job")
    assert grants(job_role["rules"], "sailvl.io", "trainstages/status") == {"get", "patch"}
    assert _env(docs)["SAILVL_JOB_CLUSTERROLE"] == f"{FULL}-job"
    # Nothing the operator never calls.
    assert grants(rules, "", "configmaps") == {"get", "create"}
    assert grants(rules, "", "services") == {"get", "create"}
    assert grants(rules, "", "serviceaccounts") == {"create"}
    assert grants(rules, "kopf.dev", "clusterkopfpeerings") == set()
    assert grants(rules, "scheduling.volcano.sh", "podgroups") == set()
    assert grants(rules, "scheduling.x-k8s.io", "podgroups") == set()


@pytest.mark.parametrize(
    ("values", "group"),
    [
        ({"scheduling": {"volcano": {"enabled": True}}}, "scheduling.volcano.sh"),
        ({"scheduling": {"coscheduling": {"enabled": True}}}, "scheduling.x-k8s.io"),
    ],
)
def test_pod_groups_are_granted_only_when_used(
    render: Renderer, values: dict[str, Any], group: str
) -> None:
    rules = rules_of(render(values), "ClusterRole")
    assert grants(rules, group, "podgroups") == {"get", "create", "delete"}


def test_editor_and_viewer_roles_aggregate_to_the_default_roles(render: Renderer) -> None:
    docs = render({})
    (editor,) = find(docs, "ClusterRole", f"{FULL}-editor")
    (viewer,) = find(docs, "ClusterRole", f"{FULL}-viewer")
    labels = editor["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert grants(editor["rules"], "sailvl.io", "curricula") >= {"create", "delete", "patch"}
    assert grants(viewer["rules"], "sailvl.io", "curricula") == {"get", "list", "watch"}
    assert grants(editor["rules"], "sailvl.io", "experiments") >= {"create", "delete", "patch"}
    assert grants(viewer["rules"], "sailvl.io", "experiments") == {"get", "list", "watch"}
    assert grants(viewer["rules"], "sailvl.io", "trainstages/status") == {"get", "list", "watch"}


def test_job_pod_defaults_reach_the_operator(render: Renderer) -> None:
    env = _env(
        render(
            {
                "ascend": {"acceleratorType": "module-910-8", "supplementalGroups": [1000, 1001]},
                "jobImages": {"captionerAscend": "r/cap-npu:1", "evaluatorAscend": "r/ev-npu:1"},
            }
        )
    )
    assert env["SAILVL_ASCEND_ACCELERATOR_TYPE"] == "module-910-8"
    assert env["SAILVL_ASCEND_SUPPLEMENTAL_GROUPS"] == "1000,1001"
    assert env["SAILVL_IMAGE_CAPTIONER_ASCEND"] == "r/cap-npu:1"
    assert env["SAILVL_IMAGE_EVALUATOR_ASCEND"] == "r/ev-npu:1"


def test_network_policy_is_optional_and_narrow(render: Renderer) -> None:
    assert find(render({}), "NetworkPolicy") == []
    docs = render(
        {
            "networkPolicy": {
                "enabled": True,
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"team": "mon"}}}],
                "apiServerCIDRs": ["10.0.0.1/32"],
            }
        }
    )
    (pol,) = find(docs, "NetworkPolicy")
    assert set(pol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = pol["spec"]["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"team": "mon"}}}]
    assert {p["port"] for p in ingress["ports"]} == {"metrics", "health"}
    cidrs = [
        b["ipBlock"]["cidr"]
        for e in pol["spec"]["egress"]
        for b in e.get("to", [])
        if "ipBlock" in b
    ]
    assert cidrs == ["10.0.0.1/32"]
    dns = [e for e in pol["spec"]["egress"] if any(p["port"] == 53 for p in e["ports"])]
    assert dns, "DNS stays reachable"


def test_values_schema_refuses_what_cannot_work(helm: Helm) -> None:
    assert (CHART / "values.schema.json").is_file()
    for bad, field in (
        ({"operator": {"replicas": "two"}}, "replicas"),
        ({"scope": "everywhere"}, "scope"),
        ({"ascend": {"supplementalGroups": ["wheel"]}}, "supplementalGroups"),
        ({"networkPolicy": {"enabeld": True}}, "enabeld"),
    ):
        with pytest.raises(Exception, match=field):
            helm.template(CHART, bad)


def test_notes_tell_the_next_steps() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    for needle in ("kubectl get sailvl", "examples/secrets.yaml", "leader"):
        assert needle in notes


def test_more_replicas_need_leader_election(helm: Helm) -> None:
    with pytest.raises(Exception, match="leaderElection"):
        helm.template(CHART, {"operator": {"replicas": 2, "leaderElection": {"enabled": False}}})
