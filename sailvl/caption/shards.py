"""Shard I/O of the caption worker: input listing, Parquet (de)serialisation, commit.

Layout (DESIGN.md section 5): a dataset is a prefix holding `manifest.json` and
Parquet shards. The worker writes output shard `<output>/<key>` for input shard
`<input>/<key>` (same relative key), so "is this shard done?" is one `exists` call and
a rerun skips committed shards (tar / Parquet inputs, `input_format` webdataset / parquet:
output `<key without suffix>.parquet`, see `sailvl.data.importers.caption_input`). A
shard is committed by a single atomic `write_bytes`
of the whole Parquet file (temp + rename on file systems, one PUT on S3): a worker
killed mid-shard leaves either no output or the complete one, never a partial shard.

Pod assignment is static and stateless: pod k of n handles manifest positions i with
i % n == k, so pods need no coordination and a restarted pod finds the same shards.
"""

from __future__ import annotations

import io
from typing import Any

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


def write_output_manifest(in_store: Any, out_store: Any, keys: list[str]) -> bool:
    """Write the output `manifest.json` once every input shard has its output.

    Every pod calls this when it ends; pods that finish early find shards missing and
    return False, the last one writes it. Its content depends only on the committed
    shards, so two pods racing write identical bytes (atomic, last writer wins). The
    manifest is the `sailvl.data` one, so the output reads like any other dataset."""
    if not all(out_store.exists(k) for k in keys):
        return False
    import hashlib

    import pyarrow.parquet as pq

    from sailvl.data.manifest import MANIFEST, Manifest, ShardInfo

    infos = []
    for key in keys:
        data = out_store.read_bytes(key)
        rows = pq.read_metadata(io.BytesIO(data)).num_rows
        infos.append(
            ShardInfo(
                path=key, samples=rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
            )
        )
    meta = {"captioned_from": in_store.uri, "columns_added": list(CAPTION_COLUMNS)}
    out_store.write_bytes(MANIFEST, Manifest(shards=infos, meta=meta).to_json().encode())
    return True
