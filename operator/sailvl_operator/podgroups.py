"""Gang scheduling: the PodGroup the operator creates and owns for a TrainStage attempt.

Annotations alone do not make a gang: Volcano gives a pod without a PodGroup of its own
a generated group with ``minMember: 1``, and the scheduler-plugins coscheduling plugin
refuses pods whose group does not exist. So for ``queue.gang`` the operator creates,
before the attempt's Job, one PodGroup named like that Job (``<name>-<attempt>``):

- ``volcano``: ``scheduling.volcano.sh/v1beta1`` with ``minMember`` = pods, the Volcano
  queue, and ``minResources`` = what all pods request together, so Volcano's enqueue
  action admits the group only when the whole gang fits;
- ``coscheduling``: ``scheduling.x-k8s.io/v1alpha1`` with ``minMember`` = pods (and the
  same ``minResources``, which the plugin uses for its pre-check).

A restart gets a fresh group: a group whose members failed carries the scheduler's
state of the old attempt (Volcano keeps its phase and conditions). The group is owned by
the TrainStage (deleted with it); the operator deletes the old attempt's group on restart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sailvl.api import constants as c
from sailvl.api.train import TrainStageSpec

_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E")


def scale_quantity(quantity: str | int, factor: int) -> str:
    """``factor`` times a Kubernetes quantity, keeping its suffix: exact, no float.
    ("16Gi", 4) -> "64Gi", ("500m", 3) -> "1500m", ("1.5", 2) -> "3"."""
    text = str(quantity).strip()
    suffix = next((s for s in _SUFFIXES if text.endswith(s)), "")
    number = Decimal(text[: len(text) - len(suffix)] if suffix else text) * factor
    digits = format(number.normalize(), "f")
    return f"{digits}{suffix}"


def pod_requests(resources: dict[str, Any]) -> dict[str, str]:
    """What the scheduler reserves for one container: requests, and for a resource with
    only a limit the limit (the API server defaults requests to limits)."""
    out = {k: str(v) for k, v in (resources.get("limits") or {}).items()}
    out.update({k: str(v) for k, v in (resources.get("requests") or {}).items()})
    return out


def group_name(name: str, attempt: int) -> str:
    return f"{name}-{attempt}"


def pod_group(
    name: str,
    namespace: str,
    spec: TrainStageSpec,
    attempt: int,
    pod: dict[str, Any],
    volcano_queue: str | None,
    meta: dict[str, Any],
) -> dict[str, Any] | None:
    """The PodGroup of one attempt (None without ``queue.gang``). ``pod`` is the Job's
    pod template, whose containers' requests give ``minResources``."""
    gang = spec.queue.gang
    if gang is None:
        return None
    members = spec.nodes
    total: dict[str, str] = {}
    for ctr in pod["spec"]["containers"]:
        for key, value in pod_requests(ctr.get("resources") or {}).items():
            total[key] = scale_quantity(value, members)
    body: dict[str, Any] = {"minMember": members}
    if total:
        body["minResources"] = dict(sorted(total.items()))
    if gang == "volcano" and volcano_queue:
        body["queue"] = volcano_queue
    priority = pod["spec"].get("priorityClassName")
    if gang == "volcano" and priority:
        body["priorityClassName"] = priority
    return {
        "apiVersion": c.PODGROUP_API[gang],
        "kind": "PodGroup",
        "metadata": {**meta, "name": group_name(name, attempt), "namespace": namespace},
        "spec": body,
    }
