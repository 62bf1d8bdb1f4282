"""DataJob: the Indexed Job of a data task (import, score, filter) and its progress.

Pure: spec in, manifests and status fields out; the reconcile loop is the one the other
Job-owning kinds use (:mod:`.children`: InvalidSpec before any child, the ConfigMap
and the Job created after ``kopf.adopt``, phase and conditions derived from the owned
Job, events after the status write, reconcile metrics in ``main._timed``).

The Job: ``parallelism`` indexes, all running at once (``completions`` =
``parallelism``), each index retried on its own ``backoffLimitPerIndex`` times; every
data command skips the work its index already committed, so a retried pod resumes.
Pods run ``sailvl data job --config /etc/sailvl/job.yaml`` (:mod:`sailvl.data.datajob`)
with their index from the completion-index annotation (``SAILVL_SHARD_INDEX``) and the
count in ``SAILVL_SHARD_COUNT``. Exit code 2 (invalid input: an unknown format, a
reject ratio above the limit, an output holding another run) fails the Job at once
(``podFailurePolicy``): retrying cannot help.

Least privilege: a data pod needs storage and, for ``score``, the judge's API key.
Both arrive by ``secretKeyRef`` (the storage Secret's named keys as AWS_* variables,
the judge key as ``SAILVL_JUDGE_API_KEY``); the pods report no progress to the API
server (the operator derives shardsDone / shardsFailed from the Job), so the job
ServiceAccount needs no right on DataJobs at all. A pod's fatal error (the file or
object and what went wrong) travels as its container's termination message
(:mod:`sailvl.data.datajob`), which :mod:`.diagnose` puts, with the failed pod's name,
into the DataJob's Failed condition and ``status.message``.
"""

from __future__ import annotations

from typing import Any

from sailvl.api import constants as c
from sailvl.api.datajob import DataJobSpec

from . import builders as b
from . import pods

KIND = "DataJob"
COMMAND = ["data", "job", "--config", f"{c.CONFIG_MOUNT_PATH}/{c.CONFIG_FILE_NAME}"]


def datajob_job(
    name: str, namespace: str, spec: DataJobSpec, defaults: b.Defaults = b.DEFAULTS
) -> dict[str, Any]:
    """The Indexed Job of a DataJob (see the module docstring)."""
    judge = spec.score.judge.api_key_secret if spec.score else None
    job = b._sharded_job(
        KIND,
        name,
        namespace,
        spec,
        spec.parallelism,
        spec.backoff_limit_per_index,
        defaults,
        pods.judge_env(judge),
    )
    job["spec"]["template"]["spec"]["containers"][0]["args"] = list(COMMAND)
    job["spec"]["podFailurePolicy"] = b.CONFIG_ERROR_POLICY
    return job


def _count(indexes: str | None) -> int:
    """How many indexes a Job's ``failedIndexes`` / ``completedIndexes`` names
    ("0,2-4" -> 4)."""
    n = 0
    for part in (indexes or "").split(","):
        if not part.strip():
            continue
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def progress(job: dict[str, Any]) -> dict[str, int]:
    """shardsTotal / shardsDone / shardsFailed from the Job's own status (trusted: only
    the Job controller writes it)."""
    st = job.get("status") or {}
    return {
        "shardsTotal": int((job.get("spec") or {}).get("completions") or 0),
        "shardsDone": _count(st.get("completedIndexes")),
        "shardsFailed": _count(st.get("failedIndexes")),
    }
