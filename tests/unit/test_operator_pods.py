"""Job pods that survive a real node and a real cluster (issue 15, items 2-5): restricted
Pod Security defaults with an override, a memory-backed /dev/shm, args that keep the
image's ENTRYPOINT (the Ascend CANN wrapper), credentials from Secrets by named key,
operator-owned PodGroups for gangs, and Ascend images and node selectors for every kind."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.api import SpecError, parse_resource, parse_spec
from sailvl.api.compose import caption_spec, eval_spec, steps
from sailvl.api.curriculum import CurriculumSpec
from sailvl.eval.judge import JudgeConfig
from sailvl_operator import builders as b

from .api_builders import caption_job, curriculum, eval_suite, train_stage
from .test_images import command_of, dockerfiles, wrappers


def _spec(obj: dict[str, Any]) -> Any:
    return parse_resource(obj)[2]


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return _pod(job)["containers"][0]  # type: ignore[no-any-return]


def _env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in _container(job)["env"]}


ALL_JOBS = [
    lambda over: b.train_job("ts", "ns", _spec(train_stage(**over)), attempt=0),
    lambda over: b.caption_job("cj", "ns", _spec(caption_job(**over))),
    lambda over: b.eval_job("es", "ns", _spec(eval_suite(**over))),
]


# --- Pod Security: restricted by default, overridable -----------------------------------


@pytest.mark.parametrize("build", ALL_JOBS)
def test_job_pods_meet_the_restricted_pod_security_level(build: Any) -> None:
    job = build({})
    pod, ctr = _pod(job), _container(job)
    psc, csc = pod["securityContext"], ctr["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert psc["runAsUser"] == 1000  # the images' USER
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    for vol in pod["volumes"]:  # only volume types the restricted level allows
        assert set(vol) - {"name"} <= {"configMap", "emptyDir", "secret", "projected"}


def test_security_context_override_merges_over_the_defaults() -> None:
    job = ALL_JOBS[0](
        {
            "template": {
                "securityContext": {"runAsUser": 1234, "supplementalGroups": [1001]},
                "containerSecurityContext": {"readOnlyRootFilesystem": True},
            }
        }
    )
    psc, csc = _pod(job)["securityContext"], _container(job)["securityContext"]
    assert psc["runAsUser"] == 1234 and psc["supplementalGroups"] == [1001]
    assert psc["runAsNonRoot"] is True  # defaults the user did not override stay
    assert csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False


def test_ascend_supplemental_groups_from_operator_defaults() -> None:
    d = b.Defaults.from_env({"SAILVL_ASCEND_SUPPLEMENTAL_GROUPS": "1000, 1001"})
    spec = _spec(train_stage(accelerator="ascend", nodes=1, devicesPerNode=2))
    job = b.train_job("ts", "ns", spec, 0, d)
    assert _pod(job)["securityContext"]["supplementalGroups"] == [1000, 1001]
    gpu = b.train_job("ts", "ns", _spec(train_stage(accelerator="nvidia")), 0, d)
    assert "supplementalGroups" not in _pod(gpu)["securityContext"]


# --- /dev/shm --------------------------------------------------------------------------


@pytest.mark.parametrize("build", ALL_JOBS)
def test_dev_shm_is_memory_backed(build: Any) -> None:
    job = build({"template": {"shmSize": "32Gi"}})
    vols = {v["name"]: v for v in _pod(job)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container(job)["volumeMounts"]}
    assert vols[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    default = build({})
    vols = {v["name"]: v for v in _pod(default)["volumes"]}
    assert vols["dshm"]["emptyDir"]["medium"] == "Memory"


def test_bad_shm_size_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec.template.shmSize"):
        parse_resource(train_stage(template={"shmSize": "lots"}))


# --- ENTRYPOINT: the pod passes args, the image keeps its wrapper ------------------------


@pytest.mark.parametrize(
    ("image", "build"),
    [
        ("trainer-ascend", ALL_JOBS[0]),
        ("trainer-ascend", ALL_JOBS[2]),  # Ascend evals run in the trainer image
        ("trainer-cuda", ALL_JOBS[0]),
        ("captioner", ALL_JOBS[1]),
        ("captioner-ascend", ALL_JOBS[1]),
    ],
)
def test_pod_args_keep_the_image_entrypoint(image: str, build: Any) -> None:
    job = build({})
    ctr = _container(job)
    assert "command" not in ctr, "command would replace the image's ENTRYPOINT"
    path = dockerfiles()[image]
    entry = command_of(path)[: len(command_of(path)) - len(ctr["args"])]
    argv = [*entry, *ctr["args"]]
    if image.endswith("-ascend"):
        # The CANN set_env wrapper runs first and hands over to sailvl with exec "$@".
        assert argv[0] in wrappers(path) and argv[1] == "sailvl"
    assert argv[argv.index("sailvl") + 1 :] == ctr["args"]


# --- Secrets ---------------------------------------------------------------------------


def test_judge_api_key_reaches_the_pod_from_its_secret() -> None:
    judge = {
        "endpoint": "http://judge:8000/v1",
        "model": "gpt",
        "apiKeySecret": {"name": "judge-key", "key": "token"},
    }
    env = _env(b.eval_job("es", "ns", _spec(eval_suite(judge=judge))))
    var = JudgeConfig(endpoint="http://x", model="m").api_key_env
    assert var is not None
    assert env[var]["valueFrom"] == {"secretKeyRef": {"name": "judge-key", "key": "token"}}
    judge["apiKeySecret"] = {"name": "judge-key"}
    env = _env(b.eval_job("es", "ns", _spec(eval_suite(judge=judge))))
    assert env[var]["valueFrom"]["secretKeyRef"]["key"] == "apiKey"  # documented default


@pytest.mark.parametrize("build", ALL_JOBS)
def test_storage_secret_maps_named_keys(build: Any) -> None:
    job = build({"storageSecret": {"name": "s3"}})
    assert "envFrom" not in _container(job)
    env = _env(job)
    ref = {
        k: v["valueFrom"]["secretKeyRef"]
        for k, v in env.items()
        if "valueFrom" in v and "secretKeyRef" in v["valueFrom"]
    }
    assert ref["AWS_ACCESS_KEY_ID"] == {"name": "s3", "key": "accessKeyId"}
    assert ref["AWS_SECRET_ACCESS_KEY"] == {"name": "s3", "key": "secretAccessKey"}
    assert ref["AWS_SESSION_TOKEN"] == {"name": "s3", "key": "sessionToken", "optional": True}
    assert ref["AWS_ENDPOINT_URL"] == {"name": "s3", "key": "endpoint", "optional": True}
    custom = build({"storageSecret": {"name": "s3", "keys": {"accessKeyId": "AWS_ACCESS_KEY_ID"}}})
    key = _env(custom)["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["key"]
    assert key == "AWS_ACCESS_KEY_ID"


def test_storage_secret_key_field_that_did_nothing_is_refused() -> None:
    with pytest.raises(SpecError, match=r"spec.storageSecret.key: unknown field"):
        parse_resource(train_stage(storageSecret={"name": "s3", "key": "x"}))


def test_curriculum_storage_secret_reaches_the_caption_step() -> None:
    cur = parse_spec(
        "Curriculum", curriculum(storage={"uri": "file:///r", "secret": {"name": "s3"}})["spec"]
    )
    assert isinstance(cur, CurriculumSpec)
    cap = caption_spec(cur)
    assert cap.storage_secret is not None and cap.storage_secret.name == "s3"


# --- Gangs: the operator's own PodGroup --------------------------------------------------


def _gang_stage(gang: str, **over: Any) -> Any:
    return _spec(
        train_stage(
            accelerator="nvidia",
            nodes=4,
            devicesPerNode=8,
            globalBatch=64,
            queue={"gang": gang, "volcanoQueue": "research"},
            # memory has only a limit: the API server defaults its request to it
            resources={"requests": {"cpu": "4"}, "limits": {"memory": "16Gi"}},
            **over,
        )
    )


def test_volcano_pod_group_gangs_all_pods_with_their_resources() -> None:
    spec = _gang_stage("volcano")
    pg = b.pod_group("ts", "ns", spec, attempt=2)
    assert pg is not None
    assert pg["apiVersion"] == "scheduling.volcano.sh/v1beta1" and pg["kind"] == "PodGroup"
    assert pg["metadata"]["name"] == "ts-2"  # one group per attempt
    assert pg["spec"]["minMember"] == 4 and pg["spec"]["queue"] == "research"
    assert pg["spec"]["minResources"] == {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "32"}
    job = b.train_job("ts", "ns", spec, attempt=2)
    meta = job["spec"]["template"]["metadata"]
    assert meta["annotations"]["scheduling.k8s.io/group-name"] == "ts-2"
    assert _pod(job)["schedulerName"] == "volcano"


def test_coscheduling_pod_group() -> None:
    spec = _gang_stage("coscheduling")
    pg = b.pod_group("ts", "ns", spec, attempt=0)
    assert pg is not None
    assert pg["apiVersion"] == "scheduling.x-k8s.io/v1alpha1" and pg["spec"]["minMember"] == 4
    job = b.train_job("ts", "ns", spec, attempt=0)
    assert job["spec"]["template"]["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "ts-0"


def test_no_gang_no_pod_group() -> None:
    assert b.pod_group("ts", "ns", _spec(train_stage()), attempt=0) is None


def test_gang_with_a_user_pod_group_is_refused() -> None:
    with pytest.raises(SpecError, match=r"spec.queue"):
        parse_resource(train_stage(queue={"gang": "volcano", "podGroup": "mine"}))


# --- Ascend: every kind, images and node labels ------------------------------------------


def _ascend_curriculum(**over: Any) -> CurriculumSpec:
    obj = curriculum(defaults={"accelerator": "ascend", "devicesPerNode": 8}, **over)
    obj["spec"]["caption"].pop("accelerator")
    spec = parse_spec("Curriculum", obj["spec"])
    assert isinstance(spec, CurriculumSpec)
    return spec


def test_ascend_curriculum_gives_every_step_ascend_images_and_nodes() -> None:
    cur = _ascend_curriculum()
    d = b.Defaults()
    cap = caption_spec(cur)
    assert cap.accelerator == "ascend"
    cap_job = b.caption_job("c", "ns", cap)
    assert _container(cap_job)["image"] == d.captioner_ascend != d.captioner
    for step in steps(cur):
        if step.kind != "EvalSuite":
            continue
        ev = eval_spec(cur, step)
        job = b.eval_job("e", "ns", ev)
        assert _container(job)["image"] == d.evaluator_ascend != d.evaluator
        assert _container(job)["resources"]["limits"] == {"huawei.com/Ascend910": "1"}
        assert _pod(job)["nodeSelector"] == {
            "accelerator": "huawei-Ascend910",
            "accelerator-type": "module-910b-8",
        }


def test_per_step_accelerator_override() -> None:
    obj = curriculum(defaults={"accelerator": "ascend", "devicesPerNode": 8})
    obj["spec"]["stages"][0]["eval"]["accelerator"] = "nvidia"
    cur = parse_spec("Curriculum", obj["spec"])
    assert isinstance(cur, CurriculumSpec)
    ev = eval_spec(cur, next(s for s in steps(cur) if s.kind == "EvalSuite"))
    assert ev.accelerator == "nvidia"
    assert caption_spec(cur).accelerator == "cpu"  # the caption step's own field wins


def test_ascend_accelerator_type_is_configurable() -> None:
    spec = _spec(train_stage(accelerator="ascend", acceleratorType="module-910-8"))
    assert _pod(b.train_job("ts", "ns", spec, 0))["nodeSelector"]["accelerator-type"] == (
        "module-910-8"
    )
    d = b.Defaults.from_env({"SAILVL_ASCEND_ACCELERATOR_TYPE": ""})
    spec = _spec(train_stage(accelerator="ascend"))
    assert "accelerator-type" not in _pod(b.train_job("ts", "ns", spec, 0, d))["nodeSelector"]


# --- Job RBAC: bind the chart's ClusterRole instead of creating Roles -------------------


def test_job_rbac_binds_the_shipped_cluster_role() -> None:
    objs = b.job_rbac("ns", b.Defaults(job_cluster_role="sailvl-job-status"))
    assert [o["kind"] for o in objs] == ["ServiceAccount", "RoleBinding"]
    assert objs[1]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "sailvl-job-status",
    }
    by_hand = b.job_rbac("ns", b.Defaults())  # no chart: a Role of the same rules
    assert [o["kind"] for o in by_hand] == ["ServiceAccount", "Role", "RoleBinding"]
    assert by_hand[1]["rules"] == b.JOB_STATUS_RULES
