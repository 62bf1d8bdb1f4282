"""Dataset writer and reader (format in `sailvl.data.manifest`).

Writer: samples are buffered and flushed as one Parquet shard when the buffer reaches
`max_samples_per_shard` or about `max_bytes_per_shard`; each shard is one atomic object
write, and `manifest.json` is written last, so a crashed writer leaves no manifest and
the half-written dataset is refused rather than read short.

Reader: `Dataset.open(uri)` parses the manifest; `read_shard(i)` returns one row per
manifest sample (None for a bad row) plus the reasons, so positions stay stable for the
streaming reader's resume arithmetic. A shard that is missing, corrupt, has the wrong
size, digest or row count, or lacks a required column raises `ShardError` naming it.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sailvl.data.manifest import (
    DEFAULTS,
    MANIFEST,
    REQUIRED_COLUMNS,
    Manifest,
    ManifestError,
    Sample,
    SampleError,
    ShardError,
    ShardInfo,
    arrow_schema,
    check_sample,
)
from sailvl.storage import NotFoundError, StorageError, Store, open_store

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class WriterConfig:
    """How a `DatasetWriter` rolls and encodes shards."""

    # Close a shard after this many samples.
    max_samples_per_shard: int = 1000
    # ... or once its samples' raw bytes (images + text) reach this size.
    max_bytes_per_shard: int = 256 << 20
    # Parquet row group size; smaller groups mean finer-grained reads.
    row_group_size: int = 256
    # Parquet compression codec (images are already compressed; zstd helps the text).
    compression: str = "zstd"
    # Shard object name pattern; `{index}` is the shard number.
    shard_pattern: str = "part-{index:05d}.parquet"
    # Refuse a sample whose id was already written by this writer.
    check_unique_ids: bool = True

    def __post_init__(self) -> None:
        if self.max_samples_per_shard < 1:
            raise ValueError("max_samples_per_shard: must be >= 1")
        if self.max_bytes_per_shard < 1:
            raise ValueError("max_bytes_per_shard: must be >= 1")
        if self.row_group_size < 1:
            raise ValueError("row_group_size: must be >= 1")
        if "{index" not in self.shard_pattern:
            raise ValueError("shard_pattern: must contain {index}")


def _sample_bytes(s: Sample) -> int:
    text = (
        len(s["caption"]) + len(s["alt_text"]) + sum(len(t["content"]) for t in s["conversations"])
    )
    return sum(len(b) for b in s["images"]) + text + len(s["id"])


class DatasetWriter:
    """Writes samples as a dataset under a URI (or a `Store`); use as a context manager."""

    def __init__(
        self,
        target: str | Store,
        config: WriterConfig | None = None,
        *,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.store = open_store(target) if isinstance(target, str) else target
        self.config = config or WriterConfig()
        self.meta = dict(meta or {})
        self._buf: list[Sample] = []
        self._buf_bytes = 0
        self._shards: list[ShardInfo] = []
        self._ids: set[str] = set()
        self._closed = False

    def write(self, raw: dict[str, Any]) -> None:
        """Add one sample (missing optional fields get defaults); may flush a shard."""
        if self._closed:
            raise RuntimeError("DatasetWriter is closed")
        sample = check_sample(raw)
        if self.config.check_unique_ids:
            if sample["id"] in self._ids:
                raise SampleError(f"id: {sample['id']!r} written twice")
            self._ids.add(sample["id"])
        self._buf.append(sample)
        self._buf_bytes += _sample_bytes(sample)
        cfg = self.config
        if (
            len(self._buf) >= cfg.max_samples_per_shard
            or self._buf_bytes >= cfg.max_bytes_per_shard
        ):
            self.flush()

    def flush(self) -> None:
        """Write the buffered samples as one shard (no-op when empty)."""
        if not self._buf:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._buf, schema=arrow_schema())
        out = io.BytesIO()
        pq.write_table(
            table,
            out,
            row_group_size=self.config.row_group_size,
            compression=self.config.compression,
        )
        data = out.getvalue()
        path = self.config.shard_pattern.format(index=len(self._shards))
        self.store.write_bytes(path, data)
        digest = hashlib.sha256(data).hexdigest()
        self._shards.append(
            ShardInfo(path=path, samples=len(self._buf), bytes=len(data), sha256=digest)
        )
        self._buf, self._buf_bytes = [], 0

    def close(self) -> Manifest:
        """Flush the last shard and write the manifest (the dataset's commit point)."""
        if self._closed:
            raise RuntimeError("DatasetWriter is closed")
        self.flush()
        manifest = Manifest(shards=self._shards, meta=self.meta)
        self.store.write_bytes(MANIFEST, manifest.to_json().encode())
        self._closed = True
        return manifest

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        # On an exception the manifest is NOT written: the partial dataset stays invalid.
        if exc_type is None and not self._closed:
            self.close()


@dataclass
class ShardRows:
    """One shard's rows: `rows[i]` is None where row i was bad; `reasons` counts why."""

    shard: str
    rows: list[Sample | None]
    reasons: Counter[str] = field(default_factory=Counter)


class Dataset:
    """A committed dataset: its manifest and access to its shards."""

    def __init__(self, store: Store, manifest: Manifest, *, verify_checksums: bool = True) -> None:
        self.store = store
        self.manifest = manifest
        self.uri = store.uri
        self.verify_checksums = verify_checksums

    @classmethod
    def open(cls, target: str | Store, *, verify_checksums: bool = True) -> Dataset:
        store = open_store(target) if isinstance(target, str) else target
        try:
            raw = store.read_bytes(MANIFEST)
        except NotFoundError as exc:
            raise ManifestError(
                f"{store.uri}: no {MANIFEST} (dataset missing or not committed)"
            ) from exc
        return cls(store, Manifest.from_json(raw), verify_checksums=verify_checksums)

    @property
    def shards(self) -> list[ShardInfo]:
        return self.manifest.shards

    def __len__(self) -> int:
        return self.manifest.num_samples

    def validate(self, *, deep: bool = False) -> None:
        """Check every listed shard exists (and with `deep`, parses and matches the
        manifest); raise `ManifestError` listing each bad shard by name."""
        present = set(self.store.list())
        problems = [f"{s.path}: missing" for s in self.shards if s.path not in present]
        if deep and not problems:
            for i, _info in enumerate(self.shards):
                try:
                    self.read_shard(i)
                except ShardError as exc:
                    problems.append(str(exc))
        if problems:
            raise ManifestError(
                f"{self.uri}: manifest disagrees with shards: " + "; ".join(problems)
            )

    def read_shard_bytes(self, index: int) -> bytes:
        info = self.shards[index]
        try:
            data = self.store.read_bytes(info.path)
        except StorageError as exc:
            raise ShardError(f"shard {info.path}: cannot read: {exc}") from exc
        if len(data) != info.bytes:
            raise ShardError(f"shard {info.path}: {len(data)} bytes, manifest says {info.bytes}")
        if (
            self.verify_checksums
            and info.sha256
            and hashlib.sha256(data).hexdigest() != info.sha256
        ):
            raise ShardError(f"shard {info.path}: sha256 mismatch (corrupt or replaced)")
        return data

    def read_shard(self, index: int, data: bytes | None = None) -> ShardRows:
        """Decode shard `index` (from `data` if already fetched) into checked rows."""
        import pyarrow.parquet as pq

        info = self.shards[index]
        if data is None:
            data = self.read_shard_bytes(index)
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError on garbage
            raise ShardError(f"shard {info.path}: not a readable Parquet file: {exc}") from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise ShardError(f"shard {info.path}: missing required column(s) {missing}")
        if table.num_rows != info.samples:
            raise ShardError(
                f"shard {info.path}: {table.num_rows} rows, manifest says {info.samples}"
            )
        out = ShardRows(shard=info.path, rows=[])
        if table.num_rows == 0:
            out.reasons["empty_shard"] += 1
            log.warning("shard %s is empty", info.path)
            return out
        for name in DEFAULTS:
            if name not in table.column_names:
                out.reasons[f"missing_column:{name}"] += table.num_rows
        for row in table.to_pylist():
            try:
                out.rows.append(check_sample(row))
            except SampleError as exc:
                out.rows.append(None)
                out.reasons[f"bad_row:{str(exc).split(':', 1)[0]}"] += 1
        bad = sum(n for k, n in out.reasons.items() if k.startswith("bad_row"))
        if bad:
            log.warning("shard %s: %d bad row(s) skipped: %s", info.path, bad, dict(out.reasons))
        return out
