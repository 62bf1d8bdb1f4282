"""Job pods on the real control plane: admitted by Pod Security admission at the
`restricted` level, and credentials that never leave their Secrets.

The namespace carries pod-security.kubernetes.io/enforce=restricted, so the API server's
PodSecurity admission plugin judges every pod the Job controller creates. A curriculum
that uses a storage Secret and a judge Secret runs to the end (KWOK pods, scores
reported as an eval pod would); then no Secret value may appear in any ConfigMap, any
resource's status, any event or any operator log line."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.operator_driver import drive, operator, phase
from tests.cluster.test_operator import crds, small_curriculum, standalone_stage  # noqa: F401

pytestmark = pytest.mark.cluster

SECRET_VALUES = {
    "accessKeyId": "AKIA-sailvl-test-4b1d",
    "secretAccessKey": "s3cr3t-sailvl-9f27c0de",
    "token": "judge-key-sailvl-77aa51",
}


def _restricted(k: Kubectl, ns: str) -> None:
    k("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")


def _secrets(k: Kubectl, ns: str) -> None:
    data = {
        "s3-credentials": {
            "accessKeyId": SECRET_VALUES["accessKeyId"],
            "secretAccessKey": SECRET_VALUES["secretAccessKey"],
        },
        "judge-api-key": {"token": SECRET_VALUES["token"]},
    }
    for name, values in data.items():
        k.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "stringData": values,
            }
        )


def _failed_creates(k: Kubectl, ns: str) -> list[str]:
    events = k.json("get", "events", "-n", ns)["items"]
    return [e["message"] for e in events if e.get("reason") == "FailedCreate"]


def test_restricted_namespace_admits_job_pods_and_rejects_an_escalating_override(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    k: Kubectl = cluster.kubectl
    _restricted(k, namespace)
    k.apply(standalone_stage("ok", namespace))
    # Control: an override that breaks the restricted level is refused by the same
    # admission plugin, so the pass above is not a plugin that judges nothing.
    k.apply(
        standalone_stage(
            "escalating",
            namespace,
            template={"containerSecurityContext": {"allowPrivilegeEscalation": True}},
        )
    )
    with operator(cluster.kubeconfig, namespace):
        pods = wait_for(
            lambda: [p for p in k.pods(namespace, "sailvl.io/name=ok")] or None,
            timeout=60,
            what="pods of the default stage",
        )
        assert len(pods) == 2  # both ranks created by the Job controller, i.e. admitted
        msgs = wait_for(
            lambda: [m for m in _failed_creates(k, namespace) if "escalating" in m] or None,
            timeout=60,
            what="the escalating stage's FailedCreate",
        )
    assert "violates PodSecurity" in msgs[0] and "allowPrivilegeEscalation" in msgs[0]
    assert not k.pods(namespace, "sailvl.io/name=escalating")
    assert not [m for m in _failed_creates(k, namespace) if "escalating" not in m]


def test_secret_values_never_leave_their_secrets(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    k: Kubectl = cluster.kubectl
    _restricted(k, namespace)
    _secrets(k, namespace)
    cur = small_curriculum("sec", namespace)
    cur["spec"]["storage"]["secret"] = {"name": "s3-credentials"}
    cur["spec"]["judge"] = {
        "endpoint": "http://judge.invalid:8000/v1",
        "model": "judge",
        "apiKeySecret": {"name": "judge-api-key", "key": "token"},
    }
    k.apply(cur)
    caplog.set_level(logging.DEBUG)
    seen_refs: set[str] = set()

    def pod_refs() -> None:
        for pod in k.pods(namespace, "app.kubernetes.io/part-of=sailvl"):
            for env in pod["spec"]["containers"][0].get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    seen_refs.add(f"{env['name']}={ref['name']}/{ref['key']}")

    with operator(cluster.kubeconfig, namespace) as runner:
        drive(
            k,
            namespace,
            lambda: (
                (pod_refs(), phase(k, "curriculum", "sec", namespace))[1] in ("Succeeded", "Failed")
            ),
            scores={"synth-ocr": 55.0, "synth-mcq": 40.0, "synth-yesno": 70.0},
        )
    assert phase(k, "curriculum", "sec", namespace) == "Succeeded"
    # The pods got the values by reference (the kubelet resolves them), every kind of them.
    assert "AWS_ACCESS_KEY_ID=s3-credentials/accessKeyId" in seen_refs
    assert "AWS_SECRET_ACCESS_KEY=s3-credentials/secretAccessKey" in seen_refs
    assert "SAILVL_JUDGE_API_KEY=judge-api-key/token" in seen_refs
    dumps = {
        "configmaps": k("get", "configmaps", "-n", namespace, "-o", "json").stdout,
        "events": k("get", "events", "-n", namespace, "-o", "json").stdout,
        "operator log": runner.output + caplog.text,
    }
    for kind in ("curricula", "trainstages", "captionjobs", "evalsuites", "jobs", "pods"):
        items = k.json("get", kind, "-n", namespace)["items"]
        dumps[f"{kind} status"] = json.dumps([i.get("status") for i in items])
        dumps[f"{kind} spec"] = json.dumps([i.get("spec") for i in items])
    assert len(dumps["operator log"]) > 1000  # the log was captured, not empty
    for value in SECRET_VALUES.values():
        encoded = base64.b64encode(value.encode()).decode()
        for where, text in dumps.items():
            assert value not in text and encoded not in text, f"secret value in {where}"
