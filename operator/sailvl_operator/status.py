"""Pure status logic: conditions in metav1.Condition's shape, and what the Jobs the
operator owns say about a resource.

Trust: every phase, reason and restart count here is computed from batch/v1 Jobs (and
their pods), never from the resource's own ``status``: job pods may merge-patch that
status (progress fields), so anything read back from it could be forged. The restart
attempt is the ``sailvl.io/restart-attempt`` label of the newest owned Job, which only
the operator writes (job pods hold no rights on Jobs).

Conditions (:func:`set_condition`): a list keyed by ``type``, ``status`` "True"/"False",
a non-empty CamelCase ``reason``, ``lastTransitionTime`` (RFC 3339, kept when only the
reason or message changes) and ``observedGeneration``. ``Ready`` means "the workload is
healthy": True while it runs or once it succeeded, False while pending, suspended, after
a failure or for an invalid spec; it is never True on a Failed resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sailvl.api import constants as c

#: metav1.Condition's reason pattern (k8s.io/apimachinery validation).
REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
#: The new attempt of a group restart has pods running again (Restarting -> False).
REASON_ATTEMPT_RUNNING = "RestartAttemptRunning"
#: The API server refused a child with a transient error; the operator retries.
REASON_API_RETRY = "ApiServerRetrying"
#: Reasons that keep Ready False even in phase Running (a group restart under way).
UNHEALTHY_REASONS = frozenset({c.REASON_INVALID_SPEC, c.REASON_RESTARTING, REASON_API_RETRY})


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
    """Return ``conditions`` with ``type_`` set; other conditions are kept as they are.

    Raises ValueError for a reason metav1.Condition would refuse (a programming error:
    the API server would then refuse the whole status write)."""
    if not REASON_RE.match(reason or ""):
        raise ValueError(f"condition {type_}: reason {reason!r} is not CamelCase")
    value = "True" if status else "False"
    out, found = [], False
    for cond in conditions or []:
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        changed = cond.get("status") != value or not cond.get("lastTransitionTime")
        out.append(
            {
                **cond,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": (at or now()) if changed else cond["lastTransitionTime"],
                **({"observedGeneration": generation} if generation is not None else {}),
            }
        )
    if not found:
        new: dict[str, Any] = {
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


def condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((x for x in conditions or [] if x.get("type") == type_), None)


@dataclass(frozen=True)
class JobOutcome:
    phase: str
    reason: str
    message: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    start_time: str | None = None
    completion_time: str | None = None


def _cond(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def job_outcome(job: dict[str, Any]) -> JobOutcome:
    """Phase, reason and times of one Job, from the Job controller's own status."""
    st = job.get("status") or {}
    counts: dict[str, Any] = {k: int(st.get(k) or 0) for k in ("active", "succeeded", "failed")}
    counts["start_time"] = st.get("startTime")
    if done := _cond(job, "Complete"):
        end = st.get("completionTime") or done.get("lastTransitionTime")
        msg = done.get("message") or ""
        return JobOutcome(c.SUCCEEDED, c.REASON_JOB_SUCCEEDED, msg, completion_time=end, **counts)
    if failed := _cond(job, "Failed"):
        reason = failed.get("reason") or c.REASON_JOB_FAILED
        msg, end = failed.get("message") or "", failed.get("lastTransitionTime")
        if reason == "DeadlineExceeded":
            return JobOutcome(c.FAILED, c.REASON_DEADLINE, msg, completion_time=end, **counts)
        if reason == "PodFailurePolicy":  # the config-error exit code (see builders)
            return JobOutcome(c.FAILED, c.REASON_CONFIG_ERROR, msg, completion_time=end, **counts)
        text = f"{reason}: {msg}".strip(": ")
        return JobOutcome(c.FAILED, c.REASON_JOB_FAILED, text, completion_time=end, **counts)
    if (job.get("spec") or {}).get("suspend"):
        return JobOutcome(c.SUSPENDED, c.REASON_SUSPENDED, "the Job is suspended", **counts)
    if counts["active"] or counts["succeeded"] or int(st.get("ready") or 0):
        return JobOutcome(c.RUNNING, c.REASON_JOB_RUNNING, "the Job's pods are running", **counts)
    return JobOutcome(c.PENDING, c.REASON_CREATED, "waiting for pods", **counts)


def attempt_of(job: dict[str, Any]) -> int:
    """The restart attempt of an owned Job, from the label the operator put on it."""
    raw = ((job.get("metadata") or {}).get("labels") or {}).get(c.LABEL_RESTART_ATTEMPT, "0")
    return int(raw) if str(raw).isdigit() else 0


def newest(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Job of the highest restart attempt (the one that decides the phase)."""
    return max(jobs, key=attempt_of, default=None)


@dataclass(frozen=True)
class TrainDecision:
    action: Literal["none", "restart", "fail", "succeed"]
    phase: str
    reason: str
    message: str


def train_decision(outcome: JobOutcome, restarts: int, max_restarts: int) -> TrainDecision:
    """What a TrainStage does about its newest Job; ``restarts`` is that Job's attempt."""
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


def decision_for(kind: str, job: dict[str, Any], max_restarts: int) -> TrainDecision:
    """The decision for any kind: only a TrainStage restarts its group."""
    outcome = job_outcome(job)
    if kind == "TrainStage":
        return train_decision(outcome, attempt_of(job), max_restarts)
    action = {c.SUCCEEDED: "succeed", c.FAILED: "fail"}.get(outcome.phase, "none")
    return TrainDecision(action, outcome.phase, outcome.reason, outcome.message)  # type: ignore[arg-type]


def phase_conditions(
    conditions: list[dict[str, Any]] | None,
    phase: str,
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions for a phase: Ready (see the module docstring) plus the phase's own
    condition; a phase condition that no longer holds turns False with the current
    reason and message (metav1 requires a reason on every condition)."""
    healthy = phase in (c.RUNNING, c.SUCCEEDED) and reason not in UNHEALTHY_REASONS
    conds = set_condition(conditions, c.COND_READY, healthy, reason, message, generation)
    for type_, on in (
        (c.COND_RUNNING, phase == c.RUNNING),
        (c.COND_SUCCEEDED, phase == c.SUCCEEDED),
        (c.COND_FAILED, phase == c.FAILED),
        (c.COND_SUSPENDED, phase == c.SUSPENDED),
    ):
        if on or condition(conds, type_) is not None:
            conds = set_condition(conds, type_, on, reason, message, generation)
    return conds
