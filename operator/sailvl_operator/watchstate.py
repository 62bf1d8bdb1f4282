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
