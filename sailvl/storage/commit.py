"""Atomic commit of a directory-like unit, and the `latest` pointer.

Object stores have no atomic directory rename, so a unit (a checkpoint `step-<n>/`, a
caption output shard set) is committed by writing all its files first and a marker
object last. Readers treat a unit without its marker as absent: a writer killed
half-way leaves garbage, never a half-read checkpoint. Re-committing overwrites files
and rewrites the marker, so a retried commit is idempotent.

`latest` is a small object holding the name of the newest committed unit; it is written
only after that unit's marker, so following it always lands on a complete unit.

First commit wins: `create_once` writes an object only if its key is free (the store's
`create_exclusive`: link, `If-None-Match`, HDFS rename without overwrite). Several
writers racing on one key (a shard taken over from a straggler, a claim) end with
exactly one object, and each writer learns whether it is the one. A retry whose first
attempt did land (its answer was lost) finds the key taken; reading the key back and
comparing bytes tells "mine" from "someone else's", so a lost answer never turns a win
into a loss (callers make their bytes unique, e.g. a claim carries a random token).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sailvl.storage.base import ExclusiveStore, NotFoundError, StorageError, Store, join

COMMIT_MARKER = "_COMMITTED"
LATEST = "latest"


def commit_unit(store: Store, unit: str, files: Mapping[str, bytes]) -> None:
    """Write `files` (relative names -> bytes) under `unit/`, then the marker.

    The marker lists the files and their sizes, so `is_committed` can tell a unit whose
    files were later deleted or truncated from a good one.
    """
    for name, data in files.items():
        store.write_bytes(join(unit, name), data)
    mark_committed(store, unit, {name: len(data) for name, data in files.items()})


def mark_committed(store: Store, unit: str, sizes: Mapping[str, int]) -> None:
    """Write the marker of a unit whose files were written some other way."""
    marker = {"files": dict(sorted(sizes.items()))}
    store.write_bytes(join(unit, COMMIT_MARKER), json.dumps(marker, indent=1).encode())


def committed_files(store: Store, unit: str) -> dict[str, int] | None:
    """The files (name -> size) a unit's marker lists, or None if not committed."""
    try:
        raw = store.read_bytes(join(unit, COMMIT_MARKER))
    except NotFoundError:
        return None
    return dict(json.loads(raw)["files"])


def is_committed(store: Store, unit: str) -> bool:
    """True if the unit's marker exists (files are trusted to the marker)."""
    return store.exists(join(unit, COMMIT_MARKER))


def write_latest(store: Store, unit: str, *, pointer: str = LATEST) -> None:
    """Point `pointer` at a committed unit; refuses an uncommitted one."""
    if not is_committed(store, unit):
        raise ValueError(f"unit: {unit!r} is not committed; refusing to point {pointer} at it")
    store.write_bytes(pointer, unit.encode())


def read_latest(store: Store, *, pointer: str = LATEST) -> str | None:
    """The unit `pointer` names, or None when there is no pointer yet."""
    try:
        return store.read_bytes(pointer).decode().strip() or None
    except NotFoundError:
        return None


def committed_units(store: Store, prefix: str = "") -> list[str]:
    """All committed units under `prefix` (found by their markers), sorted."""
    suffix = "/" + COMMIT_MARKER
    return sorted(k[: -len(suffix)] for k in store.list(prefix) if k.endswith(suffix))


_EXCLUSIVE: dict[type, bool] = {}  # isinstance on a runtime Protocol is slow: per type


def supports_create_once(store: Store) -> bool:
    """True if `store` (or the store a `RetryingStore` wraps) has `create_exclusive`."""
    inner = getattr(store, "inner", store)
    kind = type(inner)
    if kind not in _EXCLUSIVE:
        _EXCLUSIVE[kind] = isinstance(inner, ExclusiveStore)
    return _EXCLUSIVE[kind]


def create_once(store: Store, key: str, data: bytes) -> bool:
    """Write `data` at `key` unless the key exists; True if the object there now is ours.

    Of concurrent callers with different bytes exactly one gets True. A store without
    `create_exclusive` raises `StorageError` (check `supports_create_once` first)."""
    if not supports_create_once(store):
        raise StorageError(f"{store.uri}: cannot create {key!r} only-if-absent")
    if store.create_exclusive(key, data):  # type: ignore[attr-defined]
        return True
    try:
        return store.read_bytes(key) == data
    except NotFoundError:  # created by someone else and deleted since: not ours
        return False
