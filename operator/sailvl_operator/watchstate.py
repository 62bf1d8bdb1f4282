"""Resource gauges from the watch state, not from counting the operator's own writes.

kopf delivers every object of a watched kind to ``on.event`` handlers: once from the
initial list when the operator starts (event type None), then on every change, and
with type ``DELETED`` when it goes. :class:`PhaseIndex` keeps the last phase seen per
object from those events, so ``sailvl_operator_resources{kind,phase}`` counts exactly
the objects that exist (also those unchanged since an operator restart, which no write
of this process ever touched), and the per-object series
(``sailvl_operator_resource_phase``, ``sailvl_operator_train_restarts``, a Curriculum's
``sailvl_curriculum_*``) are removed when the object is deleted, instead of exporting a
resource that is gone for the life of the process.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any

from sailvl.api import constants as c
from sailvl.runtime.metrics import Metrics

Key = tuple[str, str, str]  # kind, namespace, name


class PhaseIndex:
    """The phase of every live object, by (kind, namespace, name); thread-safe (kopf
    runs sync handlers in a pool)."""

    def __init__(self) -> None:
        self._phases: dict[Key, str] = {}
        self._lock = threading.Lock()

    def seen(self, key: Key, phase: str | None) -> None:
        with self._lock:
            self._phases[key] = phase or c.PENDING

    def gone(self, key: Key) -> None:
        with self._lock:
            self._phases.pop(key, None)

    def counts(self, kind: str) -> Counter[str]:
        with self._lock:
            return Counter(p for (k, _, _), p in self._phases.items() if k == kind)


def _remove(metrics: Metrics, name: str, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # KeyError: that series was never exported
        metrics[name].remove(*labels)


def _remove_matching(metrics: Metrics, name: str, *prefix: str) -> None:
    """Remove every series of ``name`` whose first label values are ``prefix`` (a
    labelled family with a label the caller cannot list, e.g. a Curriculum's gate
    counters, one per gated step); read from the family's own samples."""
    family = metrics[name]
    width = len(prefix)
    for metric in family.collect():
        for sample in metric.samples:
            values = tuple(sample.labels.get(n, "") for n in family._labelnames)
            if values[:width] == prefix and sample.name.endswith("_total"):
                _remove(metrics, name, *values)


def observe_event(
    metrics: Metrics, index: PhaseIndex, kind: str, body: dict[str, Any], event: str | None
) -> None:
    """Fold one watch event into ``index`` and export the gauges it changes."""
    meta, st = body["metadata"], body.get("status") or {}
    ns, name = meta["namespace"], meta["name"]
    key = (kind, ns, name)
    if event == "DELETED":
        index.gone(key)
        for phase in c.PHASES:
            _remove(metrics, "sailvl_operator_resource_phase", kind, ns, name, phase)
        if kind == "TrainStage":
            _remove(metrics, "sailvl_operator_train_restarts", ns, name)
        if kind == "Curriculum":
            # Exported by curriculum.py's own Metrics (the sailvl_curriculum_ family):
            # `metrics` (the operator family) does not hold them and raised KeyError
            # here, which _remove swallowed, so they outlived the Curriculum.
            from .curriculum import METRICS as CURRICULUM_METRICS

            _remove(CURRICULUM_METRICS, "sailvl_curriculum_step", ns, name)
            _remove(CURRICULUM_METRICS, "sailvl_curriculum_steps", ns, name)
            _remove_matching(CURRICULUM_METRICS, "sailvl_curriculum_gate_failures_total", ns, name)
    else:
        phase = st.get("phase") or c.PENDING
        index.seen(key, phase)
        for p in c.PHASES:
            metrics.labels(
                "sailvl_operator_resource_phase", kind=kind, namespace=ns, name=name, phase=p
            ).set(1 if p == phase else 0)
        if kind == "TrainStage":
            restarts = int(st.get("restarts") or 0)
            metrics.labels("sailvl_operator_train_restarts", namespace=ns, name=name).set(restarts)
    counts = index.counts(kind)
    for p in c.PHASES:
        metrics.labels("sailvl_operator_resources", kind=kind, phase=p).set(counts[p])


# --- In-memory indices of Jobs and children (kopf.index), read by the hand-over.
#
# A Curriculum advance used to list its children (one list call per child kind) and
# their Jobs on every event, and the Job-event path read the child again to find its
# parent: ten API round trips between a Job's completion and the next child's create.
# kopf keeps these indices from the watches it already holds (the indexers below are
# registered in main.py); an index is updated before the handlers of the same event run,
# and kopf starts no handler before every index holds its initial listing, so a handler
# sees at least the state of the event that woke it. Children are never duplicated by a
# stale index: child and Job names are deterministic and a create answers 409.
#
# The handlers hand the live index objects (kopf passes them as keyword arguments) to
# :func:`bind`; without them (unit tests, a handler of another kind) the callers fall
# back to list calls.

JOB_INDEX = "sailvl_jobs_by_owner"
CHILD_INDEX_PREFIX = "sailvl_children_"
CURRICULUM_INDEX = "sailvl_curricula"
_BOUND: dict[str, Any] = {}


def index_job(namespace: str | None, labels: Any, body: Any, **_: Any) -> dict[Any, Any]:
    """Indexer: a Job under (namespace, the name of the resource that owns it)."""
    owner = (labels or {}).get(c.LABEL_NAME)
    return {(namespace, owner): dict(body)} if namespace and owner else {}


def index_child(kind: str) -> Any:
    """Indexer of one child kind: under ("name", kind, ns, name) and, for a Curriculum's
    child, under ("curriculum", ns, curriculum)."""

    def indexer(namespace: str | None, name: str | None, labels: Any, body: Any, **_: Any) -> Any:
        if not namespace or not name:
            return {}
        obj = dict(body)
        out: dict[Any, Any] = {("name", kind, namespace, name): obj}
        if parent := (labels or {}).get(c.LABEL_CURRICULUM):
            out[("curriculum", namespace, parent)] = (kind, obj)
        return out

    return indexer


def index_curriculum(namespace: str | None, name: str | None, body: Any, **_: Any) -> Any:
    """Indexer: a Curriculum under (namespace, name)."""
    return {(namespace, name): dict(body)} if namespace and name else {}


def bind(kwargs: dict[str, Any]) -> None:
    """Keep the indices kopf passed to a handler (the same live objects every time)."""
    for key, value in kwargs.items():
        if key in (JOB_INDEX, CURRICULUM_INDEX) or key.startswith(CHILD_INDEX_PREFIX):
            _BOUND[key] = value


def bound() -> bool:
    """Whether a handler has handed over the indices (kopf runs with them)."""
    return bool(_BOUND)


def unbind() -> None:
    """Forget the indices (tests; an operator restarted in the same process)."""
    _BOUND.clear()


def _values(index: Any, key: Any) -> list[Any] | None:
    """The values under ``key`` (``[]`` when none); None when the index is not bound or
    kopf changed it while it was read (the caller then asks the API server)."""
    if index is None:
        return None
    for _ in range(3):
        try:
            return list(index[key]) if key in index else []
        except (RuntimeError, KeyError):  # changed by the event loop during the read
            continue
    return None


def indexed_jobs(ns: str, owners: list[str]) -> list[dict[str, Any]] | None:
    """The Jobs of the named owners from the index; None when not bound."""
    index = _BOUND.get(JOB_INDEX)
    out: list[dict[str, Any]] = []
    for owner in owners:
        jobs = _values(index, (ns, owner))
        if jobs is None:
            return None
        out += jobs
    return out


def indexed_children(ns: str, curriculum: str) -> list[tuple[str, dict[str, Any]]] | None:
    """A Curriculum's children ``(kind, object)`` from the indices; None when not bound."""
    out: list[tuple[str, dict[str, Any]]] = []
    for kind in ("CaptionJob", "TrainStage", "EvalSuite"):
        got = _values(_BOUND.get(CHILD_INDEX_PREFIX + kind.lower()), ("curriculum", ns, curriculum))
        if got is None:
            return None
        out += got
    return out


def indexed_curriculum(ns: str, name: str) -> dict[str, Any] | None:
    """A Curriculum from the index; None when not bound or not there."""
    got = _values(_BOUND.get(CURRICULUM_INDEX), (ns, name))
    return got[0] if got else None


def indexed_child(kind: str, ns: str, name: str) -> dict[str, Any] | None:
    """One child from the index; None when not bound or not there."""
    got = _values(_BOUND.get(CHILD_INDEX_PREFIX + kind.lower()), ("name", kind, ns, name))
    return got[0] if got else None
