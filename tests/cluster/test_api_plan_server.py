"""sailvl.api.kube agrees with the real API server: every value rule that validation
applies to a pod overlay refuses exactly what kube-apiserver refuses in the Job the
operator would build from it (server-side dry run), and accepts what it accepts.

Rules that are the project's policy rather than the API server's (the operator's own
labels and env names, accelerator resources) are not part of this comparison.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sailvl.api.checks import name_problems, spec_problems
from sailvl.api.validation import parse_spec
from tests.cluster.controlplane.client import Kubectl
from tests.unit.api_builders import train_stage

pytestmark = pytest.mark.cluster

EXT = "example.com/dev"
CASES: list[tuple[str, dict[str, Any]]] = [
    # resources
    ("mem-bad", {"resources": {"requests": {"memory": "16GB"}}}),
    ("cpu-neg", {"resources": {"requests": {"cpu": "-1"}}}),
    ("req-over-lim", {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1G"}}}),
    ("req-eq-lim-units", {"resources": {"requests": {"memory": "1024Mi"}, "limits": {"memory": "1Gi"}}}),
    ("cpu-milli", {"resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": "2"}}}),
    ("exponent", {"resources": {"requests": {"memory": "2e9"}}}),
    ("res-name", {"resources": {"limits": {"gpus": 1}}}),
    ("ext-fraction", {"resources": {"limits": {EXT: "0.5"}}}),
    ("ext-no-limit", {"resources": {"requests": {EXT: 1}}}),
    ("ext-ok", {"resources": {"requests": {EXT: 2}, "limits": {EXT: 2}}}),
    ("ext-overcommit", {"resources": {"requests": {EXT: 1}, "limits": {EXT: 2}}}),
    ("k8s-domain", {"resources": {"limits": {"kubernetes.io/x": 1}}}),
    ("huge-alone", {"resources": {"requests": {"hugepages-2Mi": "1Gi"},
                                  "limits": {"hugepages-2Mi": "1Gi"}}}),
    ("huge-ok", {"resources": {"requests": {"hugepages-2Mi": "1Gi", "memory": "2Gi"},
                               "limits": {"hugepages-2Mi": "1Gi", "memory": "2Gi"}}}),
    # labels, selectors, annotations
    ("label-key", {"template": {"labels": {"a b": "x"}}}),
    ("label-value", {"template": {"labels": {"t": "a" * 64}}}),
    ("label-ok", {"template": {"labels": {"example.com/team": "vlm_a.b-c"}}}),
    ("selector", {"template": {"nodeSelector": {"g": "a b"}}}),
    ("annotation-key", {"template": {"annotations": {"/x": "1"}}}),
    ("annotation-ok", {"template": {"annotations": {"example.com/note": "any text: ok"}}}),
    # env
    ("env-no-name", {"template": {"env": [{"value": "1"}]}}),
    ("env-name", {"template": {"env": [{"name": "A=B", "value": "1"}]}}),
    ("env-both", {"template": {"env": [{"name": "X", "value": "1",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}}),
    ("env-ref-key", {"template": {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}}),
    ("env-field", {"template": {"env": [{"name": "X",
                                         "valueFrom": {"fieldRef": {"fieldPath": "status.nodeIP"}}}]}}),
    ("env-field-ok", {"template": {"env": [{"name": "X",
                                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}}),
    ("env-resource", {"template": {"env": [{"name": "X",
                                            "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]}}),
    ("env-ok", {"template": {"env": [{"name": "a.b-c_d", "value": "1"}]}}),
    # tolerations
    ("tol-operator", {"template": {"tolerations": [{"key": "k", "operator": "In"}]}}),
    ("tol-effect", {"template": {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoScheduled"}]}}),
    ("tol-no-key", {"template": {"tolerations": [{"value": "x"}]}}),
    ("tol-value", {"template": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}}),
    ("tol-seconds", {"template": {"tolerations": [{"key": "k", "operator": "Exists",
                                                   "effect": "NoSchedule", "tolerationSeconds": 5}]}}),
    ("tol-key", {"template": {"tolerations": [{"key": "a b", "operator": "Exists"}]}}),
    ("tol-ok", {"template": {"tolerations": [
        {"operator": "Exists"},
        {"key": "pool", "value": "a100", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 30},
    ]}}),
    # volumes
    ("mount-missing", {"template": {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}}),
    ("mount-twice", {"template": {"volumes": [{"name": "d", "emptyDir": {}}],
                                  "volumeMounts": [{"name": "d", "mountPath": "/etc/sailvl"}]}}),
    ("volume-name", {"template": {"volumes": [{"name": "A", "emptyDir": {}}]}}),
    ("volume-two", {"template": {"volumes": [{"name": "d", "emptyDir": {}, "configMap": {"name": "c"}}]}}),
    ("volume-ok", {"template": {"volumes": [{"name": "d", "emptyDir": {}}],
                                "volumeMounts": [{"name": "d", "mountPath": "/data", "subPath": "x"}]}}),
    ("subpath-up", {"template": {"volumes": [{"name": "d", "emptyDir": {}}],
                                 "volumeMounts": [{"name": "d", "mountPath": "/data", "subPath": "../x"}]}}),
    # affinity
    ("affinity-op", {"template": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "k", "operator": "Equals", "values": ["x"]}]}]}}}}}),
    ("affinity-exists-values", {"template": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["x"]}]}]}}}}}),
    ("affinity-no-topology", {"template": {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}}}),
    ("affinity-weight", {"template": {"affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]}}}}),
    ("affinity-ok", {"template": {"affinity": {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In",
                                   "values": ["H100"]}]}]}},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"a": "b"}}}]}}}}),
    # names of things the pod refers to
    ("sa-name", {"template": {"serviceAccountName": "A_b"}}),
    ("priority-name", {"template": {"priorityClassName": "A_b"}}),
]  # fmt: skip


def _dry_run(kubectl: Kubectl, namespace: str, objs: list[dict[str, Any]]) -> dict[str, str | None]:
    """Server-side dry run of creating every object in one kubectl call: name -> None
    if the server accepts it, else kubectl's output about it (kubectl goes on after a
    refused object and names each one in its error)."""
    proc = kubectl(
        "create", "--dry-run=server", "--validate=warn", "-n", namespace, "-f", "-",
        input=yaml.safe_dump_all(objs), check=False, timeout=180,
    )  # fmt: skip
    out: dict[str, str | None] = {}
    for obj in objs:
        name, kind = obj["metadata"]["name"], obj["kind"].lower()
        created = f"{kind}/{name} created" in proc.stdout or f"{kind}.batch/{name} created" in (
            proc.stdout
        )
        why = [line for line in proc.stderr.splitlines() if f'"{name}"' in line]
        out[name] = None if created else ("\n".join(why) or proc.stderr.strip())
    return out


def _train_spec(**over: Any) -> Any:
    return parse_spec("TrainStage", train_stage(**over)["spec"], checks=False)


@pytest.fixture(scope="module")
def overlay_results(cluster: Any) -> dict[str, tuple[list[str], str | None]]:
    """Case id -> (our problems, the server's refusal or None), one dry run for all."""
    from sailvl_operator import builders as b

    kubectl = cluster.kubectl
    ns = kubectl.create_namespace("plan")
    jobs, ours = [], {}
    for case, over in CASES:
        spec = _train_spec(**over)
        ours[case] = spec_problems("TrainStage", spec)
        jobs.append(b.train_job(f"ts-{case}", ns, spec, 0))
    theirs = _dry_run(kubectl, ns, jobs)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return {case: (ours[case], theirs[f"ts-{case}-0"]) for case, _ in CASES}


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_overlay_rules_match_the_api_server(
    overlay_results: dict[str, tuple[list[str], str | None]], case: str
) -> None:
    ours, theirs = overlay_results[case]
    assert bool(ours) == bool(theirs), f"ours: {ours}\nserver: {theirs}"


# (name, nodes, maxRestarts): the longest pod hostname is <name>-<maxRestarts>-<nodes-1>.
HOSTS = [("a" * 59, 1, 3), ("a" * 60, 1, 3), ("b" * 58, 32, 3), ("b" * 59, 32, 3),
         ("c" * 57, 32, 10), ("c" * 58, 32, 10)]  # fmt: skip


def test_name_limits_match_the_longest_hostname(kubectl: Kubectl, namespace: str) -> None:
    """The last attempt's last pod gets hostname ``<name>-<maxRestarts>-<nodes-1>``: the
    server refuses a pod template with that hostname exactly when validation refuses the
    name (each Job below carries the hostname explicitly, under a short Job name)."""
    from sailvl_operator import builders as b

    jobs, ours = [], {}
    for i, (name, nodes, restarts) in enumerate(HOSTS):
        spec = _train_spec(nodes=nodes, maxRestarts=restarts, globalBatch=2 * nodes)
        job = b.train_job(f"host-{i}", namespace, spec, 0)
        job["spec"]["template"]["spec"]["hostname"] = f"{name}-{restarts}-{nodes - 1}"
        job["spec"]["template"]["spec"].pop("subdomain", None)
        jobs.append(job)
        ours[f"host-{i}-0"] = name_problems("TrainStage", name, spec)
    theirs = _dry_run(kubectl, namespace, jobs)
    for job_name, problems in ours.items():
        assert bool(problems) == bool(theirs[job_name]), (job_name, problems, theirs[job_name])
    assert sum(map(bool, ours.values())) == 3  # the three one-character-too-long names


# "1ab" (a digit first) is not here: 1.36 accepts it as a Service name
# (RelaxedServiceNameValidation), older servers do not; validation keeps the older rule.
@pytest.mark.parametrize("name", ["a.b", "ab-1"])
def test_service_name_rule_matches(kubectl: Kubectl, namespace: str, name: str) -> None:
    from sailvl_operator import builders as b

    theirs = _dry_run(kubectl, namespace, [b.headless_service(name, namespace)])[name]
    assert bool(name_problems("TrainStage", name, _train_spec())) == bool(theirs), theirs


def test_the_comparison_sees_both_outcomes(
    overlay_results: dict[str, tuple[list[str], str | None]],
) -> None:
    refused = [c for c, (_, theirs) in overlay_results.items() if theirs]
    assert len(refused) >= 30 and len(overlay_results) - len(refused) >= 10
    for case in refused:
        assert "is invalid" in str(overlay_results[case][1]), overlay_results[case]
