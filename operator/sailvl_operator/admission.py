"""Kueue admission, I/O: find a Job's Workload, pass ``spec.suspend`` edges on.

The decisions are pure (:mod:`.kueue`, whose docstring explains who owns a queued Job's
``suspend``); this module only reads Workloads and applies a :class:`.kueue.SuspendStep`.
"""

from __future__ import annotations

from typing import Any

import kopf

from sailvl.api import constants as c

from . import k8s
from . import kueue as q


def workload_of(job: dict[str, Any]) -> dict[str, Any] | None:
    """The Workload Kueue made for a queued Job (label ``kueue.x-k8s.io/job-uid``); None
    for a Job without a queue, before Kueue made one, or without Kueue's CRDs."""
    meta = job.get("metadata") or {}
    if q.queue_of(job) is None or not meta.get("uid") or not meta.get("namespace"):
        return None
    items = k8s.list_workloads(meta["namespace"], f"{q.LABEL_JOB_UID}={meta['uid']}")
    return items[0] if items else None


def pass_on_suspend(body: Any, job: dict[str, Any], spec_suspend: bool) -> bool:
    """Apply a change of ``spec.suspend`` that the Job's record has not seen (edge, not
    level). A queued Job's change goes to its Workload's ``spec.active``; while Kueue has
    not made the Workload yet, a TemporaryError retries the reconcile a little later.
    True when something was passed on (the Job then changed)."""
    step = q.suspend_step(spec_suspend, job)
    if step is None:
        return False
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    if step.target == "workload":
        workload = workload_of(job)
        if workload is None:
            raise kopf.TemporaryError(
                f"suspend={spec_suspend}: waiting for Kueue's Workload of Job {name}", delay=3
            )
        k8s.patch_workload(ns, workload["metadata"]["name"], step.workload_patch())
    k8s.patch_job(ns, name, step.job_patch())
    kopf.info(
        body,
        reason=c.REASON_SUSPENDED if spec_suspend else c.REASON_RESUMED,
        message=f"suspend={spec_suspend}"
        + (" (Kueue Workload spec.active)" if step.target == "workload" else ""),
    )
    return True
