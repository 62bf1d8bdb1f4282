"""Input files as import units, and streams to read them through the storage layer.

An import is planned as an ordered list of `Unit`s, one per input file (a LLaVA JSON
or JSONL file, one InternVL annotation file, one tar shard, one Parquet file). Units
are the grain of parallelism (one worker process per unit at a time) and of the
deterministic output layout: unit i writes output parts `parts/<i>-<k>/`, so the
same plan always puts the same rows into the same parts.

Every path is a URI read through `sailvl.storage` (file or s3); a URI naming one
object is split into its parent store and key. Parquet needs random access: a stream
that cannot seek (S3) is spooled to a local temporary file first, so memory stays
bounded by Parquet row groups, not by the file.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any, BinaryIO

from sailvl.storage import Store, open_store


@functools.lru_cache(maxsize=64)
def store_at(uri: str) -> Store:
    """`open_store(uri)`, one per URI and process: building an S3 client loads botocore's
    service data (about 0.1-0.7 s each), so stores are reused, never opened per row or
    per part."""
    return open_store(uri)


@dataclass(frozen=True)
class Unit:
    """One input file of the plan."""

    index: int  # position in the plan; names the unit's output parts
    uri: str  # the input file
    image_root: str  # where relative image paths resolve
    source: str  # value of the `source` column for its rows
    id_prefix: str = ""  # prepended to row ids (InternVL: the dataset name + "/")
    info: dict[str, Any] = field(default_factory=dict)  # format extras (repeat_time ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_object(uri: str) -> tuple[Store, str]:
    """(store of the parent folder, key) for a URI naming one object."""
    uri = uri.rstrip("/")
    if "/" not in uri.split("://", 1)[-1]:
        return store_at("."), uri
    parent, name = uri.rsplit("/", 1)
    return store_at(parent or "/"), name


def parent_of(uri: str) -> str:
    uri = uri.rstrip("/")
    return uri.rsplit("/", 1)[0] if "/" in uri.split("://", 1)[-1] else "."


def open_stream(uri: str) -> IO[bytes]:
    store, key = split_object(uri)
    return store.open(key)


def is_object(uri: str) -> bool:
    store, key = split_object(uri)
    return store.exists(key)


def list_inputs(uri: str, suffixes: tuple[str, ...]) -> list[str]:
    """`uri` itself if it names an object, else the objects under it ending in
    `suffixes` (sorted, recursively), as URIs."""
    if is_object(uri):
        return [uri]
    store = store_at(uri)
    base = store.uri.rstrip("/")
    return [f"{base}/{k}" for k in store.list() if k.endswith(suffixes)]


def seekable_copy(uri: str) -> IO[bytes]:
    """A seekable binary file of `uri`: the file itself when local, else a spooled
    temporary copy (deleted on close)."""
    stream = open_stream(uri)
    if stream.seekable():
        return stream
    tmp = tempfile.TemporaryFile(prefix="sailvl-import-")  # noqa: SIM115 - returned open
    with stream:
        shutil.copyfileobj(stream, tmp, 1 << 20)
    tmp.seek(0)
    return tmp


@dataclass
class Meter:
    """Input bytes read so far by one unit (annotation text, tar and Parquet bytes,
    image files), for the progress bar's bytes/s."""

    bytes: int = 0


class SubStore:
    """The keys under `prefix/` of another store, as a store of their own.

    Output parts are small datasets under one output URI; opening each with
    `open_store` would build a new S3 client per part (slow, and a connection pool
    each). This view shares the parent's client and retries: the same seven members
    (`sailvl.storage.base.Store`), with `prefix/` added to every key."""

    def __init__(self, parent: Store, prefix: str) -> None:
        self.parent = parent
        self.prefix = prefix.strip("/")
        self.uri = f"{parent.uri.rstrip('/')}/{self.prefix}"

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if key else self.prefix

    def read_bytes(self, key: str) -> bytes:
        return self.parent.read_bytes(self._k(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self.parent.write_bytes(self._k(key), data)

    def exists(self, key: str) -> bool:
        return self.parent.exists(self._k(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        cut = len(self.prefix) + 1
        return (k[cut:] for k in self.parent.list(f"{self.prefix}/{prefix}"))

    def delete(self, key: str) -> None:
        self.parent.delete(self._k(key))

    def open(self, key: str) -> BinaryIO:
        return self.parent.open(self._k(key))
