"""A failed CaptionJob or DataJob names what failed in its status, not only in a log.

A job pod that fails writes one line naming the object and the error class
(``sailvl.runtime.report.report_failure``) to its status (CaptionJob, EvalSuite) and
to its container's termination message, which the kubelet copies into the pod's
status. KWOK has no kubelet, so the test plays both parts: the job's status report is
a status patch (as in ``test_operator.test_config_error_exit_fails_stage_without_restart``)
and the container's end is a pod status patch carrying that termination message, as
a kubelet writes it. The operator and the Job controller are the real ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cluster.controlplane.client import Kubectl, wait_for
from tests.cluster.operator_driver import CRDS, get, operator, phase, running_pods

pytestmark = pytest.mark.cluster
CAPTION_ERROR = (
    "shard s3://data/in/part-00003.parquet (read): TransientStorageError: storage get "
    "data/in/part-00003.parquet: gave up after 4 attempts: 503 SlowDown"
)
DATA_ERROR = "TaskFailed: data import: s3://data/raw/llava.json: json: stream ends at byte 50"


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl.apply(CRDS)
    cluster.kubectl.wait_established("captionjobs.sailvl.io", "datajobs.sailvl.io")


def resource(kind: str, name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "sailvl.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": ns}, "spec": spec}  # fmt: skip


def terminate(k: Kubectl, pod: dict[str, Any], code: int, message: str) -> None:
    """End a running KWOK pod's container with `code` and a termination message, the
    status a kubelet writes from the container's /dev/termination-log."""
    now = pod["status"].get("startTime")
    statuses = [
        {
            "name": ctr["name"],
            "image": ctr["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {
                "terminated": {
                    "exitCode": code,
                    "reason": "Error",
                    "message": message,
                    "startedAt": now,
                    "finishedAt": now,
                }
            },
        }
        for ctr in pod["spec"]["containers"]
    ]
    ready = [{"type": t, "status": "False", "reason": "PodFailed"}
             for t in ("Ready", "ContainersReady")]  # fmt: skip
    patch = {"status": {"phase": "Failed", "conditions": ready, "containerStatuses": statuses}}
    meta = pod["metadata"]
    k("patch", "pod", meta["name"], "-n", meta["namespace"], "--subresource=status",
      "--type=strategic", "-p", json.dumps(patch))  # fmt: skip


def failed_condition(k: Kubectl, kind: str, name: str, ns: str) -> tuple[dict[str, Any], str]:
    wait_for(lambda: phase(k, kind, name, ns) == "Failed", timeout=60, what=f"{name} Failed")
    st = get(k, kind, name, ns)["status"]
    return next(c for c in st["conditions"] if c["type"] == "Failed"), st.get("message", "")


def test_failed_caption_and_data_jobs_keep_the_jobs_message(
    cluster: Any, crds: None, namespace: str
) -> None:
    k, ns = cluster.kubectl, namespace
    caption = {"input": "s3://data/in", "output": "s3://data/out",
               "model": {"uri": "s3://models/captioner"}, "backend": "transformers",
               "accelerator": "cpu", "devicesPerPod": 0, "parallelism": 1,
               "backoffLimitPerIndex": 0}  # fmt: skip
    data = {"task": "import", "input": "s3://data/raw/llava.json", "output": "s3://data/sft",
            "import": {"format": "llava"}, "parallelism": 1}  # fmt: skip
    with operator(cluster.kubeconfig, ns):
        k.apply(resource("CaptionJob", "cap", ns, caption), resource("DataJob", "imp", ns, data))
        cap_pod = wait_for(lambda: running_pods(k, ns, owner="cap"), timeout=60, what="pod")[0]
        imp_pod = wait_for(lambda: running_pods(k, ns, owner="imp"), timeout=60, what="pod")[0]
        # The caption pod's report (its ServiceAccount may patch these two fields), then
        # its exit 1 after the shard's retries; the import exits 2 (invalid input).
        k("patch", "captionjob", "cap", "-n", ns, "--subresource=status", "--type=merge",
          "-p", json.dumps({"status": {"message": CAPTION_ERROR,
                                       "error": "TransientStorageError"}}))  # fmt: skip
        terminate(k, cap_pod, 1, CAPTION_ERROR)
        terminate(k, imp_pod, 2, DATA_ERROR)
        cap_failed, cap_message = failed_condition(k, "captionjob", "cap", ns)
        imp_failed, _ = failed_condition(k, "datajob", "imp", ns)
    # Exit 1: the Job failed (backoff per index); the operator's message names the pod
    # and carries the job's line, in the condition and in status.message.
    assert cap_failed["reason"] == "JobFailed", cap_failed
    for text in (cap_failed["message"], cap_message):
        assert "s3://data/in/part-00003.parquet" in text and "TransientStorageError" in text, text
        assert cap_pod["metadata"]["name"] in text, text
    # Exit 2: podFailurePolicy fails the Job at once (ConfigError); a DataJob's pods may
    # not patch their resource, so the termination message is the only channel.
    assert imp_failed["reason"] == "ConfigError", imp_failed
    assert "s3://data/raw/llava.json" in imp_failed["message"], imp_failed
    assert "TaskFailed" in imp_failed["message"], imp_failed
