"""The storage protocol and URI helpers.

`Store` below is the whole surface every job uses for object storage. A store is rooted
at a URI (`file:///data/x`, `s3://bucket/prefix`, `hdfs://nn:8020/path`); keys are
relative, `/`-separated paths under that root. Policies (retries, atomic directory
commit, the `latest` pointer) are written once on top of this protocol, never per
backend.

Error model: backends translate their native exceptions into the three classes here, so
callers and the retry wrapper never import boto3 or pyarrow to catch errors:

- `NotFoundError`: the key does not exist (never retried);
- `TransientStorageError`: worth retrying (timeouts, throttling, 5xx, dropped
  connections);
- `StorageError`: anything else (permission denied, bad bucket): fails at once.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import BinaryIO, Protocol, runtime_checkable

SCHEMES = ("file", "s3", "hdfs", "webhdfs")


class StorageError(Exception):
    """A storage operation failed for a reason retrying will not fix."""


class NotFoundError(StorageError, FileNotFoundError):
    """The key does not exist."""


class TransientStorageError(StorageError):
    """A failure worth retrying: timeout, throttling, 5xx, connection reset."""


@runtime_checkable
class Store(Protocol):
    """Object storage rooted at `uri`. These seven members are the whole surface.

    - `read_bytes(key)` returns the object's bytes, `NotFoundError` if absent.
    - `write_bytes(key, data)` is atomic: readers see the old object or the whole new
      one, never a prefix (temp name + rename on file systems; one PUT or one
      multipart upload on S3, which is atomic per object).
    - `exists(key)`, `delete(key)` (absent keys are not an error).
    - `list(prefix)` yields the keys (relative to the root, sorted) that start with
      `prefix`; temp files of in-flight writes are never listed.
    - `open(key)` returns a binary file object for streaming reads.
    """

    uri: str

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...

    def open(self, key: str) -> BinaryIO: ...


@runtime_checkable
class ExclusiveStore(Protocol):
    """A store that can also create a key only if it does not exist yet (an optional
    eighth member, outside `Store` so stores written before it stay valid).

    - `create_exclusive(key, data)` writes `data` under `key` atomically, as
      `write_bytes` does, if and only if `key` does not exist; returns True if this call
      created it and False if the key already existed (nothing is written then). Of
      several concurrent callers exactly one gets True. Mechanisms: `link(2)` of a temp
      file on local file systems, `If-None-Match: *` on S3's PutObject /
      CompleteMultipartUpload, HDFS rename without overwrite.

    Claims and first-commit-wins commits are built on it (`sailvl.storage.commit.
    create_once`, `sailvl.caption.claims`).
    """

    def create_exclusive(self, key: str, data: bytes) -> bool: ...


def split_uri(uri: str) -> tuple[str, str]:
    """Split a URI into (scheme, rest). A plain path is `file`."""
    if "://" not in uri:
        return "file", uri
    scheme, rest = uri.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"uri: unsupported scheme {scheme!r} in {uri!r} (use {SCHEMES})")
    return scheme, rest


def join(uri: str, *parts: str) -> str:
    """Join key parts onto a URI or a key with `/`, whatever the scheme.

    `join("s3://b/p", "a", "b.json") == "s3://b/p/a/b.json"`. Parts must be relative:
    a part starting with `/` or containing `..` raises ValueError (a key escaping its
    root is a bug, not a path).
    """
    out = uri.rstrip("/") if uri not in ("", "/") else uri
    for part in parts:
        check_key(part)
        part = part.strip("/")
        if not part:
            continue
        out = f"{out}/{part}" if out and out != "/" else (out + part if out else part)
    return out


def check_key(key: str) -> str:
    """Validate a relative key; return it normalised (no leading `/`)."""
    if key.startswith("/") or ".." in key.split("/"):
        raise ValueError(f"key: must be relative without '..', got {key!r}")
    norm = posixpath.normpath(key) if key else ""
    return "" if norm == "." else norm
