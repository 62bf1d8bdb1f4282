"""Semantic checks of a parsed spec: what the schema cannot say, refused before any child.

:func:`spec_problems` runs after the pydantic model accepted a spec; every problem is a
``path: message`` line as :mod:`sailvl.api.validation` reports them. It covers:

- the stage plan (:mod:`sailvl.api.plan`, the same function the trainer runs);
- what the trainer refuses at start-up without reading storage (a 2B / 8B model with
  neither ``model.init`` nor ``model.llm``; a ``fromStep`` outside a Curriculum);
- accelerators: the operator requests ``devicesPerNode`` / ``devicesPerPod`` of the
  accelerator's resource itself, so ``resources`` naming an accelerator resource (a
  second accelerator kind, GPUs on a CPU stage, or the same kind with another count)
  is refused, as is a GPU / NPU pod with 0 devices;
- an EvalSuite whose judge-scored benchmarks have no judge;
- every value passed through to the children (quantities, labels, tolerations, env,
  volumes: :mod:`sailvl.api.kube`) and the names of the generated children
  (:func:`name_limit`).
"""

from __future__ import annotations

import re
from typing import Any

from . import childnames, kube, podspec
from . import constants as c
from .caption import CaptionJobSpec
from .common import PodOverlay, Queueing, Resources
from .datajob import DataJobSpec
from .evalsuite import EvalSuiteSpec
from .plan import check_plan, spec_plan
from .train import TrainStageSpec

JUDGE_SCORERS = ("caption_judge", "judge_mmvet", "judge_mathvista")
# Environment variables of the pod contract (DESIGN.md section 4) that the operator sets;
# an overlay entry with the same name would come later in the list and win.
RESERVED_ENV = (
    c.ENV_MASTER_ADDR, c.ENV_MASTER_PORT, c.ENV_NNODES, c.ENV_NODE_RANK,
    c.ENV_NPROC_PER_NODE, c.ENV_RESTART_ATTEMPT, "SAILVL_STATUS_SINK",
    "SAILVL_SHARD_COUNT", "SAILVL_SHARD_INDEX",
)  # fmt: skip
# Volumes the operator mounts into every job pod: name -> mount path.
OPERATOR_VOLUMES = {"job-config": c.CONFIG_MOUNT_PATH, "dshm": "/dev/shm"}
ACCELERATOR_LIKE = re.compile(r"gpu|npu|ascend|tpu|neuron|mlu|habana", re.IGNORECASE)


def spec_problems(kind: str, spec: Any, prefix: str = "spec", name: str | None = None) -> list[str]:
    """Every semantic problem of a child-kind spec (TrainStage, EvalSuite, CaptionJob)."""
    out: list[tuple[str, str]] = []
    if isinstance(spec, TrainStageSpec):
        out += [(f".{f}", m) for f, m in check_plan(spec_plan(spec))]
        out += _train(spec)
        out += _accelerator(
            spec.accelerator, spec.resources, spec.devices_per_node, "devicesPerNode"
        )
    elif isinstance(spec, EvalSuiteSpec):
        out += _judge(spec)
        out += _accelerator(spec.accelerator, spec.resources, spec.devices_per_pod, "devicesPerPod")
    elif isinstance(spec, CaptionJobSpec):
        out += _accelerator(spec.accelerator, spec.resources, spec.devices_per_pod, "devicesPerPod")
    elif isinstance(spec, DataJobSpec):  # CPU pods: the operator requests no accelerator
        out += _accelerator("cpu", spec.resources, 0, "parallelism")
    if isinstance(spec, TrainStageSpec | EvalSuiteSpec | CaptionJobSpec | DataJobSpec):
        out += [
            (f".resources.{p}", m)
            for p, m in kube.resources(spec.resources.requests, spec.resources.limits)
        ]
        out += [(f".template{p}", m) for p, m in overlay_problems(spec.template)]
        out += [(f".queue{p}", m) for p, m in _queue(getattr(spec, "queue", None))]
    lines = [f"{prefix}{p}: {m}" for p, m in out]
    if name is not None:
        lines += [f"metadata.name: {m}" for m in name_problems(kind, name, spec)]
    return lines


def _train(spec: TrainStageSpec) -> list[tuple[str, str]]:
    out = []
    for i, src in enumerate(spec.data):
        if src.from_step is not None:
            out.append(
                (
                    f".data[{i}].fromStep",
                    f"{src.from_step!r} names a Curriculum step; a TrainStage on its own "
                    "has no steps: set uri",
                )
            )
    m = spec.model
    if m.init and (m.vision or m.llm):  # the model loader refuses both (sailvl.model.loader)
        out.append(
            (
                ".model.init",
                "set model.init (a whole SAIL-VL checkpoint) or model.vision / model.llm "
                "(its parts), not both",
            )
        )
    if m.preset != "tiny" and not (m.init or m.llm):
        out.append(
            (
                ".model.llm",
                f"model preset {m.preset!r} needs model.init or model.llm (its tokenizer and "
                "weights); only the tiny preset may start from random weights",
            )
        )
    return out


def _judge(spec: EvalSuiteSpec) -> list[tuple[str, str]]:
    if spec.judge is not None:
        return []
    need = [
        f"{b.name} ({b.resolved_scorer()})"
        for b in spec.all_benchmarks()
        if b.resolved_scorer() in JUDGE_SCORERS
    ]
    if not need:
        return []
    return [(".judge", f"required: benchmarks {', '.join(need)} are scored by a judge")]


def _accelerator(
    accel: str, res: Resources, devices: int, devices_field: str
) -> list[tuple[str, str]]:
    out = []
    if accel != "cpu" and devices < 1:
        out.append(
            (
                f".{devices_field}",
                f"accelerator {accel} needs at least 1 device per pod (for a CPU pod set "
                "accelerator: cpu)",
            )
        )
    own = c.ACCELERATOR_RESOURCE.get(accel)
    for part, values in (("requests", res.requests), ("limits", res.limits)):
        for rname in values:
            if rname == own:
                why = (
                    f"{rname} is requested by the operator from accelerator {accel} and "
                    f"{devices_field}; set {devices_field} instead"
                )
            elif rname in c.ACCELERATOR_RESOURCE.values() or (
                "/" in rname and ACCELERATOR_LIKE.search(rname)
            ):
                why = (
                    f"{rname} is an accelerator resource, but accelerator is {accel}"
                    + (": a CPU pod requests no accelerator" if accel == "cpu" else
                       f" ({own}): a pod requesting two accelerator kinds never schedules")
                )  # fmt: skip
            else:
                continue
            out.append((f".resources.{part}[{rname}]", why))
    return out


def _queue(q: Queueing | None) -> list[tuple[str, str]]:
    if q is None:
        return []
    out = []
    for field, value in (("kueueQueue", q.kueue_queue), ("podGroup", q.pod_group)):
        if value is not None and (why := kube.label_value(value) or kube.subdomain(value)):
            out.append((f".{field}", why))
    return out


def overlay_problems(o: PodOverlay) -> list[tuple[str, str]]:
    """A pod overlay (``template``) as the API server would check the pods built from it."""
    out: list[tuple[str, str]] = []
    if o.image is not None and (not o.image or o.image != o.image.strip() or " " in o.image):
        out.append((".image", f"{o.image!r} must be an image reference without spaces"))
    for field, value in (
        ("serviceAccountName", o.service_account_name),
        ("priorityClassName", o.priority_class_name),
        ("schedulerName", o.scheduler_name),
    ):
        if value is not None and (why := kube.subdomain(value)):
            out.append((f".{field}", why))
    out += [(f".nodeSelector{p}", m) for p, m in kube.label_map(o.node_selector)]
    out += [(f".labels{p}", m) for p, m in kube.label_map(o.labels, reserved=(f"{c.GROUP}/",))]
    out += [(f".annotations{p}", m) for p, m in kube.annotation_map(o.annotations)]
    for i, t in enumerate(o.tolerations):
        out += [(f".tolerations[{i}]{p}", m) for p, m in podspec.toleration(t)]
    for i, e in enumerate(o.env):
        out += [(f".env[{i}]{p}", m) for p, m in podspec.env_var(e, RESERVED_ENV)]
    out += [(f".{p}", m) for p, m in podspec.volumes(o.volumes, o.volume_mounts, OPERATOR_VOLUMES)]
    for i, s in enumerate(o.image_pull_secrets):
        ref = s.get("name") if isinstance(s, dict) else None
        if set(s) != {"name"} or not isinstance(ref, str) or kube.subdomain(ref):
            out.append((f".imagePullSecrets[{i}]", "must be {name: <Secret name>}"))
    out += [(f".affinity{p}", m) for p, m in podspec.affinity(o.affinity or {})]
    return out


def name_limit(kind: str, spec: Any) -> tuple[int, str]:
    """The longest valid name of a ``kind`` resource with ``spec``, and why.

    Children: TrainStage -> Service ``<name>`` (a DNS-1035 label), Job
    ``<name>-<attempt>`` (attempt <= maxRestarts), pods with hostname
    ``<job>-<index>`` (index < nodes); CaptionJob / EvalSuite -> Job ``<name>-0`` with
    one index per shard. A hostname and the Job's ``job-name`` pod label must be DNS
    labels of at most 63 characters. The suffix arithmetic is
    :mod:`sailvl.api.childnames`, which also writes the CRDs' CEL rules: admission and
    validation agree on every limit.
    """
    if isinstance(spec, TrainStageSpec):
        suffix = childnames.train_suffix(spec.max_restarts, spec.nodes)
        tail = f"-{spec.max_restarts}-{spec.nodes - 1}"
        why = (
            f"its pods' hostnames <name>-<attempt>-<index> reach <name>{tail} with "
            f"maxRestarts {spec.max_restarts} and {spec.nodes} nodes"
        )
    elif isinstance(spec, CaptionJobSpec | EvalSuiteSpec | DataJobSpec):
        # An EvalSuite runs min(parallelism, benchmarks) pods; the CRD's CEL rule cannot
        # count a named suite's benchmarks, so both sides bound it by parallelism.
        shards = spec.parallelism
        suffix = childnames.sharded_suffix(shards)
        tail = f"-0-{shards - 1}"
        why = f"its pods' hostnames <name>-0-<index> reach <name>{tail} with {shards} pods"
    else:
        return kube.MAX_LABEL, "it is a label value on every child"
    return kube.MAX_LABEL - suffix, why + f" (at most {kube.MAX_LABEL} characters)"


def name_problems(kind: str, name: str, spec: Any, what: str = "the name") -> list[str]:
    """Why the children ``name`` would get are invalid (``what`` names it in messages)."""
    rule = kube.DNS1035_LABEL if isinstance(spec, TrainStageSpec) else kube.DNS1123_LABEL
    if not rule.match(name):
        svc = " (it is also the name of its headless Service)" if kind == "TrainStage" else ""
        return [
            f"{what} {name!r} of this {kind} must be a DNS label: lower-case letters, digits "
            f"and '-', starting with a {'letter' if kind == 'TrainStage' else 'letter or digit'}"
            f"{svc}"
        ]
    limit, why = name_limit(kind, spec)
    if len(name) > limit:
        return [
            f"{what} {name!r} is {len(name)} characters; this {kind} may be at most {limit} "
            f"long: {why}"
        ]
    return []
