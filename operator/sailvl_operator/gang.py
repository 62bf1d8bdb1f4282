"""The I/O side of gang scheduling: create an attempt's PodGroup (owned by the
TrainStage) before its Job, and on a group restart swap the old attempt's group for a
fresh one. The objects come from :func:`.builders.pod_group`; nothing happens for a
stage without ``queue.gang``."""

from __future__ import annotations

from typing import Any

import kopf

from sailvl.api.constants import PODGROUP_API
from sailvl.api.train import TrainStageSpec

from . import builders as b
from . import k8s
from . import podgroups as pg


def ensure(body: dict[str, Any], spec: TrainStageSpec, attempt: int, d: b.Defaults) -> None:
    """Create attempt ``attempt``'s PodGroup (409: already there). Called before the
    Job is created, so its pods never wait for a group that does not exist yet."""
    meta = body["metadata"]
    group = b.pod_group(meta["name"], meta["namespace"], spec, attempt, d)
    if group is None:
        return
    kopf.adopt(group, owner=body)
    k8s.create(group)


def fresh(body: dict[str, Any], spec: TrainStageSpec, attempt: int, d: b.Defaults) -> None:
    """A group restart: the new attempt gets its own group; the previous attempt's is
    deleted (its pods are finished, and Volcano keeps a group's phase and conditions)."""
    ensure(body, spec, attempt, d)
    meta, gang = body["metadata"], spec.queue.gang
    if gang is not None and attempt > 0:
        old = pg.group_name(meta["name"], attempt - 1)
        k8s.delete_custom(PODGROUP_API[gang], "PodGroup", meta["namespace"], old)
