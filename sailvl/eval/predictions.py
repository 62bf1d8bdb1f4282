"""Predictions on storage: resumable per benchmark and per shard.

Layout under the run's output store::

    predictions/<bench>/shard-<i>-of-<n>/part-<seq>.jsonl   rows as they are generated
    predictions/<bench>/shard-<i>-of-<n>/DONE               every row of the shard answered
    predictions/<bench>.jsonl                               all shards merged, file order
    scores/<bench>.json                                     the benchmark's scored result

Each part is written whole with one atomic ``write_bytes``, so a pod killed mid-batch
loses at most the batch in flight; a rerun reads the parts, skips the indices they hold
and continues. Object stores cannot append, hence parts instead of one growing file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sailvl.storage import NotFoundError, Store

DONE = "DONE"


def shard_dir(bench: str, shard_index: int, shard_count: int) -> str:
    return f"predictions/{bench}/shard-{shard_index}-of-{shard_count}"


class PredictionLog:
    """The predictions one shard of one benchmark has written so far."""

    def __init__(self, store: Store, bench: str, shard_index: int, shard_count: int) -> None:
        self.store = store
        self.bench = bench
        self.prefix = shard_dir(bench, shard_index, shard_count)
        self.shard_count = shard_count
        self.rows: dict[str, dict[str, Any]] = {}
        self._seq = 0
        for key in self._parts():
            self._seq = max(self._seq, int(key.rsplit("-", 1)[1].split(".")[0]) + 1)
            for row in _read_jsonl(store.read_bytes(key)):
                self.rows[str(row["index"])] = row

    def _parts(self) -> list[str]:
        return [k for k in self.store.list(self.prefix + "/") if k.endswith(".jsonl")]

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        self.store.write_bytes(f"{self.prefix}/part-{self._seq:06d}.jsonl", data)
        self._seq += 1
        for r in rows:
            self.rows[str(r["index"])] = r

    def mark_done(self) -> None:
        self.store.write_bytes(f"{self.prefix}/{DONE}", b"")

    def is_done(self) -> bool:
        return self.store.exists(f"{self.prefix}/{DONE}")


def all_shards_done(store: Store, bench: str, shard_count: int) -> bool:
    return all(
        store.exists(f"{shard_dir(bench, i, shard_count)}/{DONE}") for i in range(shard_count)
    )


def collect(store: Store, bench: str, shard_count: int) -> dict[str, dict[str, Any]]:
    """Every shard's predictions, by index."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(shard_count):
        prefix = shard_dir(bench, i, shard_count)
        for key in store.list(prefix + "/"):
            if key.endswith(".jsonl"):
                for row in _read_jsonl(store.read_bytes(key)):
                    out[str(row["index"])] = row
    return out


def write_merged(store: Store, bench: str, rows: Iterable[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    store.write_bytes(f"predictions/{bench}.jsonl", data)


def read_json(store: Store, key: str) -> Any | None:
    try:
        return json.loads(store.read_bytes(key))
    except NotFoundError:
        return None


def write_json(store: Store, key: str, value: Any) -> None:
    store.write_bytes(key, json.dumps(value, indent=2, ensure_ascii=False, default=str).encode())


def _read_jsonl(data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data.decode("utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn line cannot happen with atomic writes; tolerate it anyway
        if isinstance(row, dict) and "index" in row:
            out.append(row)
    return out
