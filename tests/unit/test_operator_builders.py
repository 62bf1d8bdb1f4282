"""Golden manifests of the operator's pure builders (GPU and Ascend variants) and the
invariants they must keep. Regenerate goldens with SAILVL_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sailvl.api import parse_resource
from sailvl_operator import builders as b
from sailvl_operator import status as s

from .api_builders import caption_job, eval_suite, train_stage

GOLDEN = Path(__file__).parent / "golden"


def _spec(obj: dict[str, Any]) -> Any:
    return parse_resource(obj)[2]


def _check_golden(name: str, objs: list[dict[str, Any]]) -> None:
    """Compare with GOLDEN/<name>.yaml. Only SAILVL_UPDATE_GOLDEN=1 writes it: a missing
    golden file is a failure, never blessed by the run that should have checked it."""
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump_all(objs, sort_keys=True)
    if os.environ.get("SAILVL_UPDATE_GOLDEN"):
        path.write_text(text)
    if not path.exists():
        pytest.fail(f"{path} is missing: create it with SAILVL_UPDATE_GOLDEN=1 and review it")
    assert path.read_text() == text, (
        f"{path} differs: rerun with SAILVL_UPDATE_GOLDEN=1 if intended"
    )


def test_a_missing_golden_file_fails_and_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before this check existed, a missing golden file was written and the test
    passed (seen: this test failed with "DID NOT RAISE")."""
    monkeypatch.setattr(sys.modules[__name__], "GOLDEN", tmp_path)
    monkeypatch.delenv("SAILVL_UPDATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="missing"):
        _check_golden("absent", [{"kind": "ConfigMap"}])
    assert not (tmp_path / "absent.yaml").exists()
    monkeypatch.setenv("SAILVL_UPDATE_GOLDEN", "1")
    _check_golden("absent", [{"kind": "ConfigMap"}])  # explicit regeneration writes it
    assert (tmp_path / "absent.yaml").exists()


GPU = train_stage(
    accelerator="nvidia",
    nodes=4,
    devicesPerNode=8,
    globalBatch=64,
    suspend=True,
    queue={"kueueQueue": "team-a", "podGroup": "pg-1", "volcanoQueue": "vq"},
    activeDeadlineSeconds=3600,
    ttlSecondsAfterFinished=600,
    template={"nodeSelector": {"pool": "h100"}, "labels": {"team": "vlm"}},
    storageSecret={"name": "s3-creds"},
)
ASCEND = train_stage(accelerator="ascend", nodes=2, devicesPerNode=8, globalBatch=64)


@pytest.mark.parametrize("name,obj", [("train-gpu", GPU), ("train-ascend", ASCEND)])
def test_train_golden(name: str, obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    objs = [
        b.config_map("TrainStage", "ts", "ns", spec),
        b.headless_service("ts", "ns"),
        b.train_job("ts", "ns", spec, attempt=2),
    ]
    _check_golden(name, objs)


def test_caption_and_eval_golden() -> None:
    objs = [
        b.caption_job("cj", "ns", _spec(caption_job(parallelism=4, backoffLimitPerIndex=3))),
        b.eval_job("es", "ns", _spec(eval_suite(parallelism=8))),
    ]
    _check_golden("caption-eval", objs)


def _env(job: dict[str, Any]) -> dict[str, Any]:
    c = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_train_job_contract() -> None:
    job = b.train_job("ts", "ns", _spec(GPU), attempt=1)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimit"] == 0 and spec["suspend"] is True
    assert spec["activeDeadlineSeconds"] == 3600 and spec["ttlSecondsAfterFinished"] == 600
    env = _env(job)
    assert env["MASTER_ADDR"] == "ts-1-0.ts.ns.svc"  # rank 0's stable DNS name
    assert env["NNODES"] == "4" and env["NPROC_PER_NODE"] == "8"
    assert env["SAILVL_RESTART_ATTEMPT"] == "1"
    assert "job-completion-index" in env["NODE_RANK"]["fieldRef"]["fieldPath"]
    pod = spec["template"]
    assert pod["spec"]["subdomain"] == "ts"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "pg-1"
    assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "pg-1"
    assert pod["metadata"]["labels"]["team"] == "vlm"
    assert pod["spec"]["nodeSelector"] == {"pool": "h100"}


def test_ascend_job_contract() -> None:
    job = b.train_job("ts", "ns", _spec(ASCEND), attempt=0)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"huawei.com/Ascend910": "8"}
    assert pod["nodeSelector"]["accelerator"] == "huawei-Ascend910"
    env = _env(job)
    assert (
        env["HCCL_CONNECT_TIMEOUT"] and env["HCCL_IF_IP"]["fieldRef"]["fieldPath"] == "status.podIP"
    )


def test_user_overlay_cannot_override_selector_labels() -> None:
    obj = train_stage(template={"labels": {"sailvl.io/name": "evil"}})
    # Validation refuses the key (sailvl.api.checks); the builder keeps ours regardless.
    job = b.train_job("ts", "ns", parse_resource(obj, checks=False)[2], attempt=0)
    assert job["spec"]["template"]["metadata"]["labels"]["sailvl.io/name"] == "ts"


def test_configmap_holds_resolved_job_config() -> None:
    cm = b.config_map("TrainStage", "ts", "ns", _spec(train_stage()))
    cfg = yaml.safe_load(cm["data"]["job.yaml"])
    assert cfg["kind"] == "TrainStage" and cfg["metadata"] == {"name": "ts", "namespace": "ns"}
    assert cfg["spec"]["optimizer"]["lr"] == 1e-4 and cfg["spec"]["trainable"] == ["projector"]


def test_set_condition_keeps_transition_time() -> None:
    conds = s.set_condition(None, "Ready", True, "A", "m1", at="t1")
    conds = s.set_condition(conds, "Ready", True, "B", "m2", at="t2")
    assert conds[0]["lastTransitionTime"] == "t1" and conds[0]["reason"] == "B"
    conds = s.set_condition(conds, "Ready", False, "C", at="t3")
    assert conds[0]["lastTransitionTime"] == "t3"


@pytest.mark.parametrize(
    "job,phase",
    [
        ({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, "Succeeded"),
        (
            {
                "status": {
                    "conditions": [
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                    ]
                }
            },
            "Failed",
        ),
        ({"spec": {"suspend": True}, "status": {}}, "Suspended"),
        ({"status": {"active": 2}}, "Running"),
        ({"status": {}}, "Pending"),
    ],
)
def test_job_outcome(job: dict[str, Any], phase: str) -> None:
    assert s.job_outcome(job).phase == phase


def test_train_restart_policy() -> None:
    failed = s.job_outcome({"status": {"conditions": [{"type": "Failed", "status": "True"}]}})
    assert s.train_decision(failed, 0, 2).action == "restart"
    assert s.train_decision(failed, 1, 2).action == "restart"
    last = s.train_decision(failed, 2, 2)
    assert last.action == "fail" and last.reason == "MaxRestartsExceeded"
    deadline = s.job_outcome(
        {
            "status": {
                "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
            }
        }
    )
    assert s.train_decision(deadline, 0, 5).reason == "DeadlineExceeded"


def test_config_error_exit_code_fails_without_restart() -> None:
    job = b.train_job("ts", "ns", _spec(GPU), attempt=0)
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    failed = s.job_outcome(
        {
            "status": {
                "conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]
            }
        }
    )
    decision = s.train_decision(failed, 0, 5)
    assert decision.action == "fail" and decision.reason == "ConfigError"
