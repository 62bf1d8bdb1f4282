"""The pure Kueue decisions of the operator (sailvl_operator.kueue): a queued Job's
``suspend`` is Kueue's; ``spec.suspend`` is passed on as an edge; admission in status."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.api import constants as c
from sailvl_operator import kueue as q

QUEUE = {c.LABEL_KUEUE_QUEUE: "team"}


def job(
    *, queued: bool, suspend: bool, record: str | None = None, uid: str = "u1"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "s-0", "namespace": "ns", "uid": uid}
    meta["labels"] = dict(QUEUE) if queued else {}
    if record is not None:
        meta["annotations"] = {q.ANNOTATION_SUSPEND: record}
    return {"metadata": meta, "spec": {"suspend": suspend}}


def workload(**conds: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {"type": t, "status": st, "reason": r, "message": m}
                for t, (st, r, m) in conds.items()
            ]
        }
    }


@pytest.mark.parametrize(
    ("queued", "spec_suspend", "want_suspend", "want_record"),
    [
        (True, False, True, "false"),  # queued: suspended until Kueue admits it
        (True, True, True, "false"),  # its Workload is deactivated once Kueue made it
        (False, True, True, "true"),
        (False, False, False, "false"),
    ],
)
def test_created_suspended_when_queued(
    queued: bool, spec_suspend: bool, want_suspend: bool, want_record: str
) -> None:
    built = q.with_suspend(job(queued=queued, suspend=False), spec_suspend)
    assert built["spec"]["suspend"] is want_suspend
    assert built["metadata"]["annotations"][q.ANNOTATION_SUSPEND] == want_record


@pytest.mark.parametrize(
    ("the_job", "spec_suspend", "want"),
    [
        # Kueue suspended the queued Job (webhook) or has not admitted it: not ours to undo,
        # on a resume (operator restart) nor on any other reconcile.
        (job(queued=True, suspend=True, record="false"), False, None),
        # A Job made before the record existed: a queued Job's suspend is Kueue's.
        (job(queued=True, suspend=True), False, None),
        # Kueue admitted it (unsuspended): nothing to pass on either.
        (job(queued=True, suspend=False, record="false"), False, None),
        # Edges: suspend / resume go to the Workload of a queued Job ...
        (job(queued=True, suspend=False, record="false"), True, q.SuspendStep("workload", True)),
        (job(queued=True, suspend=True, record="true"), False, q.SuspendStep("workload", False)),
        # ... and to the Job itself without a queue.
        (job(queued=False, suspend=False, record="false"), True, q.SuspendStep("job", True)),
        (job(queued=False, suspend=True, record="true"), False, q.SuspendStep("job", False)),
        # Level is never re-applied: someone else unsuspended a queue-less Job after the
        # operator passed suspend=true on; the spec did not change, so nothing happens.
        (job(queued=False, suspend=False, record="true"), True, None),
        # No record on an old queue-less Job: its own suspend counts as passed on.
        (job(queued=False, suspend=True), True, None),
        (job(queued=False, suspend=False), True, q.SuspendStep("job", True)),
    ],
)
def test_suspend_step_is_an_edge(
    the_job: dict[str, Any], spec_suspend: bool, want: q.SuspendStep | None
) -> None:
    assert q.suspend_step(spec_suspend, the_job) == want


def test_step_patches() -> None:
    wl = q.SuspendStep("workload", True)
    assert wl.workload_patch() == {"spec": {"active": False}}
    assert wl.job_patch() == {"metadata": {"annotations": {q.ANNOTATION_SUSPEND: "true"}}}
    plain = q.SuspendStep("job", False)
    assert plain.job_patch() == {
        "metadata": {"annotations": {q.ANNOTATION_SUSPEND: "false"}},
        "spec": {"suspend": False},
    }
    assert q.SuspendStep("workload", False).workload_patch() == {"spec": {"active": True}}


NO_QUOTA = "couldn't assign flavors to pod set main: insufficient unused quota"


@pytest.mark.parametrize(
    ("phase", "the_job", "wl", "spec_suspend", "want"),
    [
        (
            c.SUSPENDED,
            job(queued=True, suspend=True),
            workload(QuotaReserved=("False", "Pending", NO_QUOTA)),
            False,
            (c.PENDING, q.REASON_QUEUED, NO_QUOTA),
        ),
        (
            c.SUSPENDED,
            job(queued=True, suspend=True),
            None,
            False,
            (c.PENDING, q.REASON_QUEUED, "waiting for Kueue to create a Workload (queue team)"),
        ),
        # The user suspended the stage: Suspended, whatever Kueue says.
        (c.SUSPENDED, job(queued=True, suspend=True), None, True, (c.SUSPENDED, "r", "m")),
        # No queue: a suspended Job is Suspended.
        (c.SUSPENDED, job(queued=False, suspend=True), None, False, (c.SUSPENDED, "r", "m")),
        # Admitted and running: unchanged.
        (c.RUNNING, job(queued=True, suspend=False), None, False, (c.RUNNING, "r", "m")),
    ],
)
def test_queued_phase(
    phase: str,
    the_job: dict[str, Any],
    wl: dict[str, Any] | None,
    spec_suspend: bool,
    want: tuple[str, str, str],
) -> None:
    assert q.queued_phase(phase, "r", "m", the_job, wl, spec_suspend) == want


def test_admission_conditions_mirror_the_workload() -> None:
    conds = [{"type": "Ready", "status": "False", "reason": "Queued", "message": ""}]
    wl = workload(
        QuotaReserved=("False", "Pending", NO_QUOTA),
        Admitted=("False", "NoReservation", "The workload has no reservation"),
        Finished=("False", "x", "y"),
    )
    out = q.admission_conditions(conds, wl, 3)
    by_type = {x["type"]: x for x in out}
    assert set(by_type) == {"Ready", "QuotaReserved", "Admitted"}
    assert by_type["QuotaReserved"]["message"] == NO_QUOTA
    assert by_type["QuotaReserved"]["status"] == "False"
    assert by_type["Admitted"]["observedGeneration"] == 3
    first = by_type["QuotaReserved"]["lastTransitionTime"]
    # Admitted later: status flips (new transition time); same status keeps the time.
    later = q.admission_conditions(
        [{**x, "lastTransitionTime": "2000-01-01T00:00:00Z"} for x in out],
        workload(
            QuotaReserved=("True", "QuotaReserved", "Quota reserved in ClusterQueue cq"),
            Admitted=("False", "NoReservation", "still"),
        ),
        3,
    )
    by_type = {x["type"]: x for x in later}
    assert by_type["QuotaReserved"]["status"] == "True"
    assert by_type["QuotaReserved"]["lastTransitionTime"] != "2000-01-01T00:00:00Z"
    assert by_type["Admitted"]["lastTransitionTime"] == "2000-01-01T00:00:00Z"
    assert first
    assert q.admission_conditions(conds, None, 1) == conds
