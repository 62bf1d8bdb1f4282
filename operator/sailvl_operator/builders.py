"""Pure manifest builders: a resource's spec in, Kubernetes objects (dicts) out.

One helper (:func:`meta`) merges labels and annotations for every child, so that the
labels the operator selects on can never be overridden by a user's overlay. Names are
deterministic: the ConfigMap is ``<name>-config``, the headless Service ``<name>``, the
Job ``<name>-<attempt>`` (a TrainStage gets a new Job per group restart), and with
``queue.gang`` the PodGroup ``<name>-<attempt>`` (:mod:`.podgroups`).

Every job pod is restricted-Pod-Security compatible unless the overlay says otherwise
(:mod:`.pods`), passes ``args`` only so the image's ENTRYPOINT (``sailvl``, or the Ascend
image's CANN wrapper in front of it) runs, and gets credentials by ``secretKeyRef``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sailvl.api import constants as c
from sailvl.api.caption import CaptionJobSpec
from sailvl.api.common import PodOverlay, Resources, StorageSecretRef
from sailvl.api.evalsuite import EvalSuiteSpec
from sailvl.api.jobconfig import dump_job_config, job_config
from sailvl.api.train import TrainStageSpec

from . import kueue, pods
from . import podgroups as pg

JOB_SERVICE_ACCOUNT = "sailvl-job"


@dataclass(frozen=True)
class Defaults:
    """Operator-wide defaults (the Helm chart sets them as environment variables); a
    resource's own spec always wins over them."""

    trainer_cuda: str = "sailvl/trainer-cuda:0.1.0"
    trainer_ascend: str = "sailvl/trainer-ascend:0.1.0"
    captioner: str = "sailvl/captioner:0.1.0"
    evaluator: str = "sailvl/evaluator:0.1.0"
    # LMDeploy's PyTorch engine on CANN (images/captioner-ascend.Dockerfile).
    captioner_ascend: str = "sailvl/captioner-ascend:0.1.0"
    # The Ascend trainer image carries the evaluator's whole stack (torch_npu + the
    # package's train extra), so Ascend evals run in it.
    evaluator_ascend: str = "sailvl/trainer-ascend:0.1.0"
    kueue_queue: str | None = None
    scheduler_name: str | None = None
    volcano_queue: str | None = None
    # accelerator-type node label of Ascend pods unless a spec names one; "" for none.
    ascend_accelerator_type: str = c.DEFAULT_ASCEND_TYPE
    # Groups owning /dev/davinci* on the hosts (the driver's HwHiAiUser group).
    ascend_supplemental_groups: tuple[int, ...] = ()
    # The chart's ClusterRole for job pods; unset: a Role per namespace (job_rbac).
    job_cluster_role: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Defaults:
        base = cls()
        groups = env.get("SAILVL_ASCEND_SUPPLEMENTAL_GROUPS") or ""
        return cls(
            trainer_cuda=env.get("SAILVL_IMAGE_TRAINER_CUDA") or base.trainer_cuda,
            trainer_ascend=env.get("SAILVL_IMAGE_TRAINER_ASCEND") or base.trainer_ascend,
            captioner=env.get("SAILVL_IMAGE_CAPTIONER") or base.captioner,
            evaluator=env.get("SAILVL_IMAGE_EVALUATOR") or base.evaluator,
            captioner_ascend=env.get("SAILVL_IMAGE_CAPTIONER_ASCEND") or base.captioner_ascend,
            evaluator_ascend=env.get("SAILVL_IMAGE_EVALUATOR_ASCEND") or base.evaluator_ascend,
            kueue_queue=env.get("SAILVL_KUEUE_QUEUE_NAME") or None,
            scheduler_name=env.get("SAILVL_SCHEDULER_NAME") or None,
            volcano_queue=env.get("SAILVL_VOLCANO_QUEUE") or None,
            ascend_accelerator_type=env.get(
                "SAILVL_ASCEND_ACCELERATOR_TYPE", base.ascend_accelerator_type
            ),
            ascend_supplemental_groups=tuple(int(g) for g in groups.split(",") if g.strip()),
            job_cluster_role=env.get("SAILVL_JOB_CLUSTERROLE") or None,
        )

    def image(self, kind: str, accel: str) -> str:
        """The default image of a kind on an accelerator: every kind has an Ascend one."""
        ascend = accel == "ascend"
        if kind == "TrainStage":
            return self.trainer_ascend if ascend else self.trainer_cuda
        if kind == "CaptionJob":
            return self.captioner_ascend if ascend else self.captioner
        return self.evaluator_ascend if ascend else self.evaluator


DEFAULTS = Defaults()
COMMAND = {"TrainStage": "train", "CaptionJob": "caption", "EvalSuite": "eval", "DataJob": "data"}
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# Exit code 2 is a configuration error (sailvl train, sailvl data): fail the Job at once,
# no restart and no per-index retry.
CONFIG_ERROR_POLICY: dict[str, Any] = {
    "rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [c.EXIT_CONFIG_ERROR]}}
    ]
}
# HCCL settings for multi-node Ascend jobs launched torchrun-style (no rank table).
HCCL_ENV = {
    "HCCL_CONNECT_TIMEOUT": "1200",
    "HCCL_EXEC_TIMEOUT": "1800",
    "HCCL_WHITELIST_DISABLE": "1",
}


def selector_labels(kind: str, name: str) -> dict[str, str]:
    return {c.LABEL_KIND: kind, c.LABEL_NAME: name}


def meta(
    name: str,
    namespace: str,
    kind: str,
    owner: str,
    *layers: dict[str, Any] | None,
) -> dict[str, Any]:
    """Metadata of a child: user labels/annotations first, then ours (ours win)."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for layer in layers:
        if layer:
            labels.update(layer.get("labels") or {})
            annotations.update(layer.get("annotations") or {})
    labels.update(
        {
            c.LABEL_PART_OF: c.PART_OF_VALUE,
            c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE,
            c.LABEL_COMPONENT: COMMAND[kind],
            **selector_labels(kind, owner),
        }
    )
    out: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        out["annotations"] = annotations
    return out


def config_map(kind: str, name: str, namespace: str, spec: Any) -> dict[str, Any]:
    cfg = job_config(kind, name, namespace, spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(f"{name}-config", namespace, kind, name),
        "data": {c.CONFIG_FILE_NAME: dump_job_config(cfg)},
    }


def headless_service(name: str, namespace: str) -> dict[str, Any]:
    """Gives rank 0 the stable name ``<job>-0.<name>`` before it is Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, namespace, "TrainStage", name),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels("TrainStage", name),
            "ports": [{"name": "rendezvous", "port": c.DEFAULT_MASTER_PORT}],
        },
    }


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _index_env(var: str) -> dict[str, Any]:
    path = f"metadata.annotations['{INDEX_ANNOTATION}']"
    return {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _resources(res: Resources, accel: str, devices: int) -> dict[str, Any]:
    limits = {k: str(v) for k, v in res.limits.items()}
    requests = {k: str(v) for k, v in res.requests.items()}
    if accel in c.ACCELERATOR_RESOURCE and devices > 0:
        limits[c.ACCELERATOR_RESOURCE[accel]] = str(devices)
        requests[c.ACCELERATOR_RESOURCE[accel]] = str(devices)
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def _pod(
    kind: str,
    name: str,
    spec: Any,
    env: list[dict[str, Any]],
    accel: str,
    devices: int,
    pod_labels: dict[str, str],
    pod_annotations: dict[str, str],
    secret: StorageSecretRef | None,
    defaults: Defaults,
    scheduler_name: str | None = None,
) -> dict[str, Any]:
    overlay: PodOverlay = spec.template
    image = overlay.image or defaults.image(kind, accel)
    container: dict[str, Any] = {
        "name": COMMAND[kind],
        "image": image,
        # args, not command: the image's ENTRYPOINT is `sailvl` (on Ascend behind the
        # CANN set_env wrapper), which a `command` would replace.
        "args": [COMMAND[kind], "--config", f"{c.CONFIG_MOUNT_PATH}/{c.CONFIG_FILE_NAME}"],
        "env": [
            *env,
            *pods.storage_env(secret),
            {"name": "SAILVL_STATUS_SINK", "value": "kubernetes"},
            *overlay.env,
        ],
        "ports": [{"name": "metrics", "containerPort": c.JOB_METRICS_PORT}],
        "resources": _resources(spec.resources, accel, devices),
        "securityContext": pods.container_security_context(overlay),
        "volumeMounts": [
            {"name": "job-config", "mountPath": c.CONFIG_MOUNT_PATH, "readOnly": True},
            pods.SHM_MOUNT,
            *overlay.volume_mounts,
        ],
    }
    groups = defaults.ascend_supplemental_groups if accel == "ascend" else ()
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": overlay.service_account_name or JOB_SERVICE_ACCOUNT,
        "securityContext": pods.pod_security_context(overlay, groups),
        "containers": [container],
        "volumes": [
            {"name": "job-config", "configMap": {"name": f"{name}-config"}},
            pods.shm_volume(overlay),
            *overlay.volumes,
        ],
    }
    node_selector = dict(overlay.node_selector)
    if accel == "ascend":
        node_selector[c.ASCEND_NODE_LABEL[0]] = c.ASCEND_NODE_LABEL[1]
        ascend_type = spec.accelerator_type
        if ascend_type is None:
            ascend_type = defaults.ascend_accelerator_type
        if ascend_type:
            node_selector[c.ASCEND_TYPE_LABEL] = ascend_type
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    for key, value in (
        ("tolerations", overlay.tolerations),
        ("affinity", overlay.affinity),
        ("imagePullSecrets", overlay.image_pull_secrets),
        ("priorityClassName", overlay.priority_class_name),
        ("schedulerName", overlay.scheduler_name or scheduler_name or defaults.scheduler_name),
    ):
        if value:
            pod_spec[key] = value
    labels = {
        **overlay.labels,
        **pod_labels,
        c.LABEL_PART_OF: c.PART_OF_VALUE,
        **selector_labels(kind, name),
    }
    annotations = {**overlay.annotations, **pod_annotations}
    template_meta: dict[str, Any] = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations
    return {"metadata": template_meta, "spec": pod_spec}


def _job(
    kind: str,
    job_name: str,
    owner: str,
    namespace: str,
    *,
    completions: int,
    pod: dict[str, Any],
    job_labels: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(job_name, namespace, kind, owner, {"labels": job_labels or {}}),
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": completions,
            "template": pod,
            **(extra or {}),
        },
    }


def train_job_name(name: str, attempt: int) -> str:
    return f"{name}-{attempt}"


def train_job(
    name: str, namespace: str, spec: TrainStageSpec, attempt: int, defaults: Defaults = DEFAULTS
) -> dict[str, Any]:
    """The Indexed Job of one attempt of a TrainStage: one pod per node, rank = index."""
    job_name = train_job_name(name, attempt)
    env = _env(
        {
            c.ENV_MASTER_ADDR: f"{job_name}-0.{name}.{namespace}.svc",
            c.ENV_MASTER_PORT: str(c.DEFAULT_MASTER_PORT),
            c.ENV_NNODES: str(spec.nodes),
            c.ENV_NPROC_PER_NODE: str(spec.devices_per_node),
            c.ENV_RESTART_ATTEMPT: str(attempt),
        }
    )
    env.append(_index_env(c.ENV_NODE_RANK))
    if spec.accelerator == "ascend":
        env += _env(HCCL_ENV)
        env.append({"name": "HCCL_IF_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    q = spec.queue
    pod_labels = {c.LABEL_RESTART_ATTEMPT: str(attempt)}
    pod_annotations: dict[str, str] = {}
    group = pg.group_name(name, attempt) if q.gang else q.pod_group
    if group and q.gang != "coscheduling":
        pod_annotations[c.ANNOTATION_VOLCANO_GROUP] = group
    if group and q.gang != "volcano":
        pod_labels[c.LABEL_COSCHEDULING_GROUP] = group
    if q.volcano_queue or defaults.volcano_queue:
        pod_annotations[c.ANNOTATION_VOLCANO_QUEUE] = (
            q.volcano_queue or defaults.volcano_queue or ""
        )
    devices = 0 if spec.accelerator == "cpu" else spec.devices_per_node
    pod = _pod(
        "TrainStage",
        name,
        spec,
        env,
        spec.accelerator,
        devices,
        pod_labels,
        pod_annotations,
        spec.storage_secret,
        defaults,
        c.GANG_SCHEDULER[q.gang] if q.gang else None,
    )
    pod["spec"]["subdomain"] = name
    extra: dict[str, Any] = {
        "backoffLimit": 0,
        "suspend": spec.suspend,
        "podFailurePolicy": CONFIG_ERROR_POLICY,
    }
    if spec.active_deadline_seconds:
        extra["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        extra["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    job_labels = {c.LABEL_RESTART_ATTEMPT: str(attempt)}
    if q.kueue_queue or defaults.kueue_queue:
        job_labels[c.LABEL_KUEUE_QUEUE] = q.kueue_queue or defaults.kueue_queue or ""
    job = _job(
        "TrainStage",
        job_name,
        name,
        namespace,
        completions=spec.nodes,
        pod=pod,
        job_labels=job_labels,
        extra=extra,
    )
    return kueue.with_suspend(job, spec.suspend)  # a queued Job starts suspended


def pod_group(
    name: str, namespace: str, spec: TrainStageSpec, attempt: int, defaults: Defaults = DEFAULTS
) -> dict[str, Any] | None:
    """The PodGroup of one attempt of a gang-scheduled TrainStage (None without
    ``queue.gang``), sized from the same pod template as :func:`train_job`."""
    job = train_job(name, namespace, spec, attempt, defaults)
    queue = spec.queue.volcano_queue or defaults.volcano_queue
    return pg.pod_group(
        name,
        namespace,
        spec,
        attempt,
        job["spec"]["template"],
        queue,
        meta(pg.group_name(name, attempt), namespace, "TrainStage", name),
    )


def _sharded_job(
    kind: str,
    name: str,
    namespace: str,
    spec: Any,
    shards: int,
    retries: int,
    defaults: Defaults,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Indexed Job of ``shards`` pods: index k takes the work items i with i % shards == k;
    a failed index is retried ``retries`` times on its own (``backoffLimitPerIndex``)."""
    env = _env({"SAILVL_SHARD_COUNT": str(shards)})
    env.append(_index_env("SAILVL_SHARD_INDEX"))
    env += extra_env or []
    devices = 0 if spec.accelerator == "cpu" else spec.devices_per_pod
    pod = _pod(
        kind, name, spec, env, spec.accelerator, devices, {}, {}, spec.storage_secret, defaults
    )
    extra = {"backoffLimitPerIndex": retries, "maxFailedIndexes": shards}
    return _job(kind, f"{name}-0", name, namespace, completions=shards, pod=pod, extra=extra)


def caption_job(
    name: str, namespace: str, spec: CaptionJobSpec, defaults: Defaults = DEFAULTS
) -> dict[str, Any]:
    """One index per pod (``parallelism`` indexes, all running at once). Pods claim the
    input shards dynamically on the output store (``sailvl.caption.claims``), or take
    shards i % parallelism == k with ``assignment: static``. The shard count never
    reaches the Job: 30,000 shards are still ``parallelism`` (<= 10,000) completions,
    inside Kubernetes' Indexed Job limits (pkg/apis/batch/validation: parallelism and
    maxFailedIndexes <= 100,000; with ``backoffLimitPerIndex`` and completions above
    100,000, parallelism and maxFailedIndexes <= 10,000). A crashed pod's index is
    retried on its own and resumes that pod's claims."""
    return _sharded_job(
        "CaptionJob",
        name,
        namespace,
        spec,
        spec.parallelism,
        spec.backoff_limit_per_index,
        defaults,
    )


def eval_job(
    name: str, namespace: str, spec: EvalSuiteSpec, defaults: Defaults = DEFAULTS
) -> dict[str, Any]:
    """One index per benchmark shard (at most one pod per benchmark)."""
    shards = max(1, min(spec.parallelism, len(spec.all_benchmarks())))
    judge = spec.judge.api_key_secret if spec.judge else None
    return _sharded_job(
        "EvalSuite", name, namespace, spec, shards, 1, defaults, pods.judge_env(judge)
    )


JOB_STATUS_RULES = [
    {
        "apiGroups": [c.GROUP],
        "resources": ["trainstages/status", "captionjobs/status", "evalsuites/status"],
        "verbs": ["get", "patch"],
    }
]


def job_rbac(namespace: str, defaults: Defaults = DEFAULTS) -> list[dict[str, Any]]:
    """ServiceAccount + RoleBinding letting job pods patch their status only.

    With the chart, the rules live in one shipped ClusterRole (``job_cluster_role``)
    that the operator may only *bind* (RBAC ``bind`` restricted to that name), so it
    needs no cluster-wide right to create Roles. Without one (the operator run by hand
    with an admin kubeconfig) a Role with the same rules is created in the namespace."""
    m = {
        "namespace": namespace,
        "labels": {c.LABEL_PART_OF: c.PART_OF_VALUE, c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE},
    }
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": JOB_SERVICE_ACCOUNT, **m},
    }
    subjects = [{"kind": "ServiceAccount", "name": JOB_SERVICE_ACCOUNT, "namespace": namespace}]
    if defaults.job_cluster_role:
        return [
            sa,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": JOB_SERVICE_ACCOUNT, **m},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": defaults.job_cluster_role,
                },
                "subjects": subjects,
            },
        ]
    return [
        sa,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": JOB_SERVICE_ACCOUNT, **m},
            "rules": JOB_STATUS_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": JOB_SERVICE_ACCOUNT, **m},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": JOB_SERVICE_ACCOUNT,
            },
            "subjects": subjects,
        },
    ]


def owned_child(
    kind: str,
    name: str,
    namespace: str,
    spec: dict[str, Any],
    owner: dict[str, Any],
    labels: dict[str, str],
) -> dict[str, Any]:
    """A child resource of a Curriculum or an Experiment (``owner``, a body read from the
    API server), owned by it: deleting the owner deletes it. ``labels`` say whose step it
    is (``sailvl.io/curriculum`` + ``sailvl.io/step``, or ``sailvl.io/experiment`` +
    ``sailvl.io/trial`` + ``sailvl.io/step``); the parent lists its children by them."""
    om = owner["metadata"]
    return {
        "apiVersion": c.API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                c.LABEL_PART_OF: c.PART_OF_VALUE,
                c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE,
                **labels,
            },
            "ownerReferences": [
                {
                    "apiVersion": c.API_VERSION,
                    "kind": owner["kind"],
                    "name": om["name"],
                    "uid": om["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
