"""One run per key at a time, and no trigger ever waits for one (the operator's handlers
run in kopf's thread pool; a thread that waits on another run's lock is a thread that
handles no event meanwhile).

A trigger that finds a run of its key under way adds its item (a child name, say) and
returns at once; the running thread runs once more when it is done, with the items of
every trigger that came meanwhile, and that run starts after their events. Used by the
Curriculum's advance (in the caller's thread) and by the children's observe (in a small
pool of its own, so a Job's next event, its ``Complete`` above all, is not queued behind
the status write of the one before: kopf handles one object's events one at a time).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class KeyedRuns:
    """Runs of ``fn(items)`` per key, never two at once for one key."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        #: keys with a run under way -> the items of the triggers that came during it
        #: ("" for a trigger without one); an empty set: no trigger came, no rerun.
        self.queued: dict[Hashable, set[str]] = {}

    def run(self, key: Hashable, fn: Callable[[frozenset[str]], None], item: str | None) -> None:
        """Run ``fn`` in this thread, unless a run of ``key`` is under way (then that one
        runs again). An error ends this thread's runs once the runs asked for meanwhile
        are done (then it is raised), so no trigger is lost to another's error."""
        with self._guard:
            queued = self.queued.get(key)
            if queued is not None:
                queued.add(item or "")
                return
            self.queued[key] = set()
        items: frozenset[str] = frozenset([item] if item else [])
        error: BaseException | None = None
        while True:
            try:
                fn(items)
            except BaseException as err:  # raised below, after the reruns
                error = err
            with self._guard:
                queued = self.queued.pop(key)
                if queued:  # triggers came during the run: run again, still holding the key
                    self.queued[key] = set()
            if not queued:
                break
            items = frozenset(queued - {""})
        if error is not None:
            raise error


class Background:
    """:class:`KeyedRuns` in a pool of its own threads; errors are logged (kopf would
    only log an event handler's error too).

    A run carries the context variables of the thread that submitted it, as kopf's own
    handler threads do: ``kopf.info`` and ``kopf.warn`` post through kopf's event queue,
    which kopf keeps in context variables (without them they raise LookupError, after
    the status write: the event was lost)."""

    def __init__(self, workers: int) -> None:
        self.runs = KeyedRuns()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sailvl-bg")

    def submit(self, key: Hashable, fn: Callable[[frozenset[str]], None]) -> None:
        self._pool.submit(contextvars.copy_context().run, self._run, key, fn)

    def _run(self, key: Hashable, fn: Callable[[frozenset[str]], None]) -> None:
        try:
            self.runs.run(key, fn, None)
        except Exception:
            log.exception("background run of %s failed", key)
