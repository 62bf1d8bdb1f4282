"""Pure status logic: conditions in jobset's shape and what a child Job's state means.

:func:`set_condition` keeps ``lastTransitionTime`` when only the reason or message
changes. :func:`job_outcome` reads a batch/v1 Job; :func:`train_decision` adds the
group-restart policy of a TrainStage (a failed pod fails the Job, since backoffLimit is
0; the operator then starts a new Job for the whole group until ``maxRestarts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sailvl.api import constants as c


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str = "",
    generation: int | None = None,
    at: str | None = None,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with ``type_`` set; other conditions are kept as they are."""
    value = "True" if status else "False"
    out, found = [], False
    for cond in conditions or []:
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        changed = cond.get("status") != value
        out.append(
            {
                **cond,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": (at or now()) if changed else cond.get("lastTransitionTime"),
                **({"observedGeneration": generation} if generation is not None else {}),
            }
        )
    if not found:
        new = {
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": at or now(),
        }
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    return out


@dataclass(frozen=True)
class JobOutcome:
    phase: str
    reason: str
    message: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0


def _cond(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def job_outcome(job: dict[str, Any]) -> JobOutcome:
    st = job.get("status") or {}
    counts = {k: int(st.get(k) or 0) for k in ("active", "succeeded", "failed")}
    if done := _cond(job, "Complete"):
        return JobOutcome(c.SUCCEEDED, c.REASON_JOB_SUCCEEDED, done.get("message") or "", **counts)
    if failed := _cond(job, "Failed"):
        reason = failed.get("reason") or c.REASON_JOB_FAILED
        msg = failed.get("message") or ""
        if reason == "DeadlineExceeded":
            return JobOutcome(c.FAILED, c.REASON_DEADLINE, msg, **counts)
        if reason == "PodFailurePolicy":  # the config-error exit code (see builders)
            return JobOutcome(c.FAILED, c.REASON_CONFIG_ERROR, msg, **counts)
        return JobOutcome(c.FAILED, c.REASON_JOB_FAILED, f"{reason}: {msg}".strip(": "), **counts)
    if (job.get("spec") or {}).get("suspend"):
        return JobOutcome(c.SUSPENDED, c.REASON_SUSPENDED, "the Job is suspended", **counts)
    if counts["active"] or counts["succeeded"] or int(st.get("ready") or 0):
        return JobOutcome(c.RUNNING, c.REASON_JOB_RUNNING, "", **counts)
    return JobOutcome(c.PENDING, c.REASON_CREATED, "waiting for pods", **counts)


@dataclass(frozen=True)
class TrainDecision:
    action: Literal["none", "restart", "fail", "succeed"]
    phase: str
    reason: str
    message: str


def train_decision(outcome: JobOutcome, restarts: int, max_restarts: int) -> TrainDecision:
    if outcome.phase == c.SUCCEEDED:
        return TrainDecision("succeed", c.SUCCEEDED, c.REASON_JOB_SUCCEEDED, "stage finished")
    if outcome.phase != c.FAILED:
        return TrainDecision("none", outcome.phase, outcome.reason, outcome.message)
    if outcome.reason == c.REASON_CONFIG_ERROR:
        return TrainDecision(
            "fail", c.FAILED, c.REASON_CONFIG_ERROR, "the stage reported a configuration error"
        )
    if outcome.reason == c.REASON_DEADLINE:
        return TrainDecision(
            "fail", c.FAILED, c.REASON_DEADLINE, outcome.message or "activeDeadlineSeconds exceeded"
        )
    if restarts < max_restarts:
        return TrainDecision(
            "restart",
            c.RUNNING,
            c.REASON_RESTARTING,
            f"a pod failed; restarting the group (restart {restarts + 1} of {max_restarts})",
        )
    return TrainDecision(
        "fail",
        c.FAILED,
        c.REASON_MAX_RESTARTS,
        f"a pod failed and maxRestarts ({max_restarts}) is reached: {outcome.message}".rstrip(": "),
    )


def phase_conditions(
    conditions: list[dict[str, Any]] | None,
    phase: str,
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions for a phase: Ready (spec accepted) plus the phase's own condition."""
    conds = set_condition(
        conditions, c.COND_READY, reason != c.REASON_INVALID_SPEC, reason, message, generation
    )
    for type_, on in (
        (c.COND_RUNNING, phase == c.RUNNING),
        (c.COND_SUCCEEDED, phase == c.SUCCEEDED),
        (c.COND_FAILED, phase == c.FAILED),
        (c.COND_SUSPENDED, phase == c.SUSPENDED),
    ):
        if on or any(x.get("type") == type_ for x in conds):
            conds = set_condition(
                conds, type_, on, reason if on else "", message if on else "", generation
            )
    return conds
