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

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from sailvl.storage import Store, open_store


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
        return open_store("."), uri
    parent, name = uri.rsplit("/", 1)
    return open_store(parent or "/"), name


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
    store = open_store(uri)
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
