"""Kueue admission, pure: who owns a queued Job's ``suspend``, and what the status says.

Kueue (sigs.k8s.io/kueue) admits a batch/v1 Job that carries the label
``kueue.x-k8s.io/queue-name``: its webhook suspends the Job when it is created, its
controller creates a Workload for it (labelled ``kueue.x-k8s.io/job-uid``), reserves
quota in a ClusterQueue and only then unsuspends the Job. Whoever else flips that
``suspend`` fights Kueue: an unsuspend before admission starts pods without quota (Kueue
suspends the Job again only after its pods were created), and a suspend of an admitted
Job is undone by Kueue, which unsuspends every admitted Job it finds suspended.

So for a queued Job the operator:

- creates it suspended (:func:`with_suspend`), so no pod starts before admission even
  where Kueue's webhook is missing or late;
- never writes its ``spec.suspend`` afterwards. The TrainStage's ``spec.suspend`` is passed
  on through Kueue's own switch instead, the Workload's ``spec.active``: ``false`` makes
  Kueue evict the Workload, suspend the Job and release the quota; ``true`` requeues it.

A Job without a queue gets ``spec.suspend`` on its own ``suspend``.

Edge, not level: the annotation ``sailvl.io/suspend`` on the Job records the value of
``spec.suspend`` the operator last passed on, and :func:`suspend_step` acts only when the
spec differs from that record. The reconcile that kopf runs for every resource when the
operator (re)starts, and any other spec edit, therefore find nothing to do and leave
Kueue's decision alone. A queued Job is created with the record ``false`` (its Workload
is active); a stage created with ``suspend: true`` thus deactivates its Workload as soon
as Kueue has created it.

Status (:func:`queued_phase`, :func:`admission_conditions`): a queued Job that is
suspended while its stage is not is waiting for Kueue, so the phase is ``Pending`` with
reason ``Queued`` and Kueue's own message (e.g. "couldn't assign flavors to pod set
main: insufficient unused quota ..."), and the Workload's ``QuotaReserved`` and
``Admitted`` conditions are mirrored into the stage's conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sailvl.api import constants as c

from . import status as s

ANNOTATION_SUSPEND = "sailvl.io/suspend"
WORKLOAD_GROUP, WORKLOAD_VERSION, WORKLOAD_PLURAL = "kueue.x-k8s.io", "v1beta2", "workloads"
LABEL_JOB_UID = "kueue.x-k8s.io/job-uid"  # Kueue's label on the Workload of a Job
REASON_QUEUED = "Queued"
#: Workload conditions copied into the stage's status.
MIRRORED = ("QuotaReserved", "Admitted")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def queue_of(job: dict[str, Any]) -> str | None:
    """The Kueue LocalQueue the Job is submitted to, if any."""
    return ((job.get("metadata") or {}).get("labels") or {}).get(c.LABEL_KUEUE_QUEUE) or None


def with_suspend(job: dict[str, Any], spec_suspend: bool) -> dict[str, Any]:
    """The Job as the operator creates it (modified in place and returned): a queued Job
    is suspended until Kueue admits it; the annotation records what was passed on."""
    queued = queue_of(job) is not None
    job["spec"]["suspend"] = spec_suspend or queued
    annotations = job["metadata"].setdefault("annotations", {})
    annotations[ANNOTATION_SUSPEND] = _flag(spec_suspend and not queued)
    return job


@dataclass(frozen=True)
class SuspendStep:
    """Pass ``suspend`` on to the Job's ``spec.suspend`` or to the Workload's ``spec.active``."""

    target: Literal["job", "workload"]
    suspend: bool

    def job_patch(self) -> dict[str, Any]:
        """Merge patch of the Job: the new record, and ``suspend`` only on a queue-less Job."""
        patch: dict[str, Any] = {
            "metadata": {"annotations": {ANNOTATION_SUSPEND: _flag(self.suspend)}}
        }
        if self.target == "job":
            patch["spec"] = {"suspend": self.suspend}
        return patch

    def workload_patch(self) -> dict[str, Any]:
        return {"spec": {"active": not self.suspend}}


def suspend_step(spec_suspend: bool, job: dict[str, Any]) -> SuspendStep | None:
    """What to do about ``spec.suspend`` for an existing Job; None when it was passed on.

    A Job made before the annotation existed counts as carrying its own ``suspend`` (a
    queue-less Job) or ``false`` (a queued one, whose ``suspend`` is Kueue's)."""
    queued = queue_of(job) is not None
    record = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SUSPEND)
    if record is None:
        passed = False if queued else bool((job.get("spec") or {}).get("suspend"))
    else:
        passed = record == "true"
    if passed == spec_suspend:
        return None
    return SuspendStep("workload" if queued else "job", spec_suspend)


def _workload_condition(workload: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((workload or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def queue_message(job: dict[str, Any], workload: dict[str, Any] | None) -> str:
    """Kueue's own account of why the Job waits (the Workload's conditions), or ours."""
    for type_ in ("QuotaReserved", "Admitted"):
        cond = _workload_condition(workload, type_)
        if cond and cond.get("status") != "True" and cond.get("message"):
            return str(cond["message"])
    if workload is None:
        return f"waiting for Kueue to create a Workload (queue {queue_of(job)})"
    return f"waiting for Kueue to admit the Workload (queue {queue_of(job)})"


def queued_phase(
    phase: str,
    reason: str,
    message: str,
    job: dict[str, Any],
    workload: dict[str, Any] | None,
    spec_suspend: bool,
) -> tuple[str, str, str]:
    """(phase, reason, message) of a stage: a suspended queued Job of a stage that is not
    suspended is ``Pending`` / ``Queued`` with Kueue's message; anything else is kept."""
    if queue_of(job) is None or phase != c.SUSPENDED or spec_suspend:
        return phase, reason, message
    return c.PENDING, REASON_QUEUED, queue_message(job, workload)


def admission_conditions(
    conditions: list[dict[str, Any]],
    workload: dict[str, Any] | None,
    generation: int | None,
) -> list[dict[str, Any]]:
    """``conditions`` with the Workload's QuotaReserved / Admitted copied in (type,
    status, reason, message; lastTransitionTime kept while the status is unchanged)."""
    for type_ in MIRRORED:
        cond = _workload_condition(workload, type_)
        if cond is not None:
            conditions = s.set_condition(
                conditions,
                type_,
                cond.get("status") == "True",
                str(cond.get("reason") or type_),
                str(cond.get("message") or ""),
                generation,
            )
    return conditions
