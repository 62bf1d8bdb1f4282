"""Finish an import: resolve duplicate ids, write `rejects.jsonl`, then the manifest.

Runs once every unit has its last part (`unit_done`). Order matters for crash safety:

1. Duplicates. Parts are walked in plan order (unit, part, shard, row) with the ids
   each part manifest records (the shard's id column only for a part without that
   list), so no shard is read again; the first occurrence of an id wins, every later one is
   a `duplicate_id` rejection. Only a 16-byte BLAKE2 digest per id is held (not the
   ids, not the rows). A part holding duplicates is copied once, without them, to
   `<part>-dedup/` (again through `DatasetWriter`, manifest last), and the output
   manifest lists that copy; the original part is left untouched, so recomputing
   after a crash finds the same duplicates and reuses the committed copy.
2. `rejects.jsonl`: one line per rejected row (id, reason, detail, source file, row
   position), written whole in one atomic object write.
3. The reject ratio (rejected / input rows) is checked against `max_reject_ratio`;
   above it the import fails (`ImportRejected`, exit 2) and NO manifest is written:
   the parts and the rejects file stay for inspection, and a rerun with a higher
   limit finalises without re-reading any input.
4. `manifest.json` (the dataset's commit point, `sailvl.data.manifest`), listing each
   part's shards as `parts/<unit>-<k>[-dedup]/part-<n>.parquet`, with per-reason counts
   in `meta.import.rejected`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from typing import Any

from sailvl.data.dataset import Dataset, DatasetWriter, WriterConfig
from sailvl.data.importers.inputs import SubStore, Unit, store_at
from sailvl.data.importers.parts import committed_parts
from sailvl.data.importers.records import DUPLICATE_ID, REASONS
from sailvl.data.manifest import MANIFEST, Manifest, ShardInfo
from sailvl.storage import NotFoundError, Store, join

REJECTS = "rejects.jsonl"


class ImportRejected(Exception):
    """Too many rows were rejected; the message gives the ratio and the counts."""


class ImportIncomplete(Exception):
    """A unit has no final part yet (an import still running or killed)."""


def _ids(store: Store, shard: str) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(store.read_bytes(shard)), columns=["id"])
    return [str(x) for x in table.column("id").to_pylist()]


def _dedup_copy(out: Store, key: str, manifest: Manifest, drop: set[str]) -> Manifest:
    """The part without the rows in `drop` (shard path + '#' + row), committed once."""
    target = SubStore(out, f"{key}-dedup")
    try:
        return Manifest.from_json(target.read_bytes(MANIFEST))
    except NotFoundError:
        pass
    src = Dataset.open(SubStore(out, key))
    cfg = WriterConfig(max_samples_per_shard=1 << 30, max_bytes_per_shard=1 << 62)
    with DatasetWriter(target, cfg, meta=dict(manifest.meta)) as writer:
        for i, info in enumerate(src.shards):
            for r, row in enumerate(src.read_shard(i).rows):
                if row is not None and f"{info.path}#{r}" not in drop:
                    writer.write(dict(row))
    return Manifest.from_json(target.read_bytes(MANIFEST))


def finalize(
    out_uri: str, units: list[Unit], *, max_reject_ratio: float, meta: dict[str, Any]
) -> Manifest:
    """Write rejects and the manifest (see the module docstring); return the manifest."""
    out = store_at(out_uri)
    parts: list[tuple[Unit, str, Manifest]] = []
    for unit in units:
        done = committed_parts(out, unit.index)
        if not done or not done[-1][1].meta.get("unit_done"):
            raise ImportIncomplete(f"{unit.uri}: not fully imported yet")
        parts.extend((unit, key, m) for key, m in done)

    seen: set[bytes] = set()
    rejects: list[dict[str, Any]] = []
    shards: list[ShardInfo] = []
    per_source: dict[str, Counter[str]] = {}
    for unit, key, m in parts:
        src = per_source.setdefault(unit.source, Counter())
        src["rows"] += m.meta["rows_end"] - m.meta["rows_start"]
        for rej in m.meta.get("rejects", []):
            rejects.append({**rej, "source": unit.uri})
        drop: set[str] = set()
        part_store = SubStore(out, key)
        recorded = m.meta.get("ids")
        offset = 0
        for info in m.shards:
            if recorded is not None and len(recorded) == m.num_samples:
                ids = recorded[offset : offset + info.samples]
            else:  # a part without its id list (or a mismatched one): read the column
                ids = _ids(part_store, info.path)
            offset += info.samples
            for r, sid in enumerate(ids):
                digest = hashlib.blake2b(sid.encode(), digest_size=16).digest()
                if digest in seen:
                    drop.add(f"{info.path}#{r}")
                    rejects.append(
                        {"id": sid, "reason": DUPLICATE_ID, "detail": "", "source": unit.uri}
                    )
                else:
                    seen.add(digest)
        final_key, final = key, m
        if drop:
            final_key, final = f"{key}-dedup", _dedup_copy(out, key, m, drop)
        for s in final.shards:
            shards.append(
                ShardInfo(path=f"{final_key}/{s.path}", samples=s.samples, bytes=s.bytes,
                          sha256=s.sha256)
            )  # fmt: skip
        src["rejected"] += len(m.meta.get("rejects", [])) + len(drop)

    rows_in = sum(c["rows"] for c in per_source.values())
    counts = Counter({r: 0 for r in REASONS})
    counts.update(r["reason"] for r in rejects)
    ratio = len(rejects) / rows_in if rows_in else 0.0
    out.write_bytes(REJECTS, "".join(json.dumps(r) + "\n" for r in rejects).encode())
    summary = {
        **meta,
        "rows_in": rows_in,
        "rows_out": rows_in - len(rejects),
        "rejected": dict(counts),
        "reject_ratio": round(ratio, 6),
        "max_reject_ratio": max_reject_ratio,
        "rejects_file": REJECTS,
        "sources": {
            u.source: {"uri": u.uri, **dict(per_source.get(u.source, {})), **u.info} for u in units
        },
    }
    if ratio > max_reject_ratio:
        bad = {k: v for k, v in counts.items() if v}
        raise ImportRejected(
            f"{len(rejects)} of {rows_in} rows rejected ({ratio:.2%} > --max-reject-ratio "
            f"{max_reject_ratio:.2%}): {bad}; see {join(out_uri, REJECTS)}"
        )
    manifest = Manifest(shards=shards, meta={"import": summary})
    out.write_bytes(MANIFEST, manifest.to_json().encode())
    return manifest
