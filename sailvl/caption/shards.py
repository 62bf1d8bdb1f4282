"""Shard I/O of the caption worker: input listing, Parquet (de)serialisation, commit.

Layout (DESIGN.md section 5): a dataset is a prefix holding `manifest.json` and
Parquet shards. The worker writes output shard `<output>/<key>` for input shard
`<input>/<key>` (same relative key), so "is this shard done?" is one `exists` call and
a rerun skips committed shards (tar / Parquet inputs, `input_format` webdataset / parquet:
output `<key without suffix>.parquet`, see `sailvl.data.importers.caption_input`). A
shard is committed by a single atomic `write_bytes`
of the whole Parquet file (temp + rename on file systems, one PUT on S3): a worker
killed mid-shard leaves either no output or the complete one, never a partial shard.

Commit (`commit_shard`). The output is created only if absent (`create_once`: the first
commit wins; a straggler that finishes after its shard was taken over writes nothing),
then the winner writes the shard's index object `_index/<output key>.json`: rows, bytes
and sha256 of the committed file, samples captioned, the claim generation. The output
manifest is built from these small objects (`write_output_manifest`), never by reading
the output shards back: 30,000 index objects of ~200 bytes instead of ~30 TB. An output
committed without its index (written before index objects existed, or its pod died in
between) is indexed by reading that one output once.

Pod assignment: dynamic by default (`sailvl.caption.claims`: pods claim shards through
conditional creates, stragglers are taken over); `assignment: static` keeps the old
stateless split, pod k of n handles manifest positions i with i % n == k.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sailvl.storage import NotFoundError, create_once, supports_create_once

log = logging.getLogger("sailvl.caption")
INDEX = "_index/"

# Columns the worker adds (`caption` replaces the input's own caption column).
CAPTION_COLUMNS = (
    "caption",
    "caption_status",
    "caption_model",
    "caption_prompt_version",
    "caption_prompt_kind",
)


def shard_keys(in_store: Any, input_format: str = "dataset") -> list[str]:
    """Shard keys of the input: the dataset's in manifest order, or (webdataset /
    parquet inputs) the tar / Parquet keys under the prefix, sorted."""
    from sailvl.data.manifest import MANIFEST, Manifest

    if input_format != "dataset":
        from sailvl.data.importers.caption_input import shard_keys as raw_keys

        return raw_keys(in_store, input_format)
    return [s.path for s in Manifest.from_json(in_store.read_bytes(MANIFEST)).shards]


def assigned(keys: list[str], index: int, count: int) -> list[str]:
    """The shards pod `index` of `count` handles: manifest positions i % count == index."""
    return [k for i, k in enumerate(keys) if i % count == index]


def read_table(data: bytes) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def table_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def build_output(table: Any, rows: list[int], extra: dict[str, list[Any]]) -> Any:
    """Input columns of `rows` (in order) with `extra` columns set or replaced.

    The input's own `caption` column (the web caption, if any) is replaced by the
    generated one; every other input column is carried through unchanged."""
    import pyarrow as pa

    out = table.take(pa.array(rows, type=pa.int64())) if rows != list(range(len(table))) else table
    for name, values in extra.items():
        col = pa.array(values, type=pa.string())
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, col)
        else:
            out = out.append_column(name, col)
    return out


def index_key(out_key: str) -> str:
    """The index object of output shard `out_key`."""
    return f"{INDEX}{out_key}.json"


def shard_facts(data: bytes, *, rows: int | None = None, **extra: Any) -> dict[str, Any]:
    """What the manifest needs of one output shard: rows, bytes, sha256 (+ `extra`)."""
    if rows is None:
        import pyarrow.parquet as pq

        rows = pq.read_metadata(io.BytesIO(data)).num_rows
    facts = {"samples": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return {**facts, **extra}


def commit_shard(out_store: Any, out_key: str, data: bytes, facts: dict[str, Any]) -> bool:
    """Commit one output shard, first commit wins; True if this call's bytes are the
    output (then its index object is written). False: another pod committed it first;
    its index is made sure of, nothing of ours is written."""
    if supports_create_once(out_store):
        won = create_once(out_store, out_key, data)
    else:  # a store without conditional create: last writer wins, as before
        out_store.write_bytes(out_key, data)
        won = True
    if won:
        body = json.dumps({"path": out_key, **facts}, sort_keys=True).encode()
        out_store.write_bytes(index_key(out_key), body)
    else:
        ensure_index(out_store, out_key)
    return won


def ensure_index(out_store: Any, out_key: str) -> dict[str, Any] | None:
    """The index facts of a committed output, written from the output itself if missing
    (reads that one shard); None if the output is not committed."""
    try:
        return dict(json.loads(out_store.read_bytes(index_key(out_key))))
    except NotFoundError:
        pass
    try:
        data = out_store.read_bytes(out_key)
    except NotFoundError:
        return None
    facts = {"path": out_key, **shard_facts(data)}
    out_store.write_bytes(index_key(out_key), json.dumps(facts, sort_keys=True).encode())
    log.info("output %s had no index object: indexed from the shard", out_key)
    return facts


def indexed_outputs(out_store: Any) -> set[str]:
    """Output keys that have an index object (one listing of `_index/`)."""
    n = len(INDEX)
    return {k[n:-5] for k in out_store.list(INDEX) if k.endswith(".json")}


def write_output_manifest(in_store: Any, out_store: Any, keys: list[str]) -> bool:
    """Write the output `manifest.json` once every input shard has its output.

    Every pod calls this when it ends; pods that finish early find a shard missing and
    return False, the last one writes it. The facts come from the index objects (one
    listing, then small reads in parallel); an output without one is indexed from the
    shard itself (`ensure_index`). Its content depends only on the committed shards, so
    two pods racing write identical bytes (atomic, last writer wins). The manifest is
    the `sailvl.data` one, so the output reads like any other dataset."""
    from sailvl.data.manifest import MANIFEST, Manifest, ShardInfo

    indexed = indexed_outputs(out_store)
    for key in keys:
        if key not in indexed and ensure_index(out_store, key) is None:
            return False

    def facts(key: str) -> dict[str, Any]:
        return dict(json.loads(out_store.read_bytes(index_key(key))))

    with ThreadPoolExecutor(16) as pool:
        rows = list(pool.map(facts, keys))
    infos = [
        ShardInfo(path=k, samples=f["samples"], bytes=f["bytes"], sha256=f["sha256"])
        for k, f in zip(keys, rows, strict=True)
    ]
    meta = {"captioned_from": in_store.uri, "columns_added": list(CAPTION_COLUMNS)}
    out_store.write_bytes(MANIFEST, Manifest(shards=infos, meta=meta).to_json().encode())
    return True
