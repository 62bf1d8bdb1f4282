"""Object storage by URI: `file://` (and plain paths), `s3://bucket/prefix`, `hdfs://`,
`webhdfs://` (see `sailvl.storage.hdfs` for how an HDFS client is chosen).

`open_store(uri)` returns a `Store` (see `sailvl.storage.base.Store`, the whole surface)
wrapped in retries. Importing this package imports no boto3 or pyarrow: the S3 and HDFS
backends import them when a store is first used.
"""

from __future__ import annotations

from sailvl.storage.base import (
    ExclusiveStore,
    NotFoundError,
    StorageError,
    Store,
    TransientStorageError,
    join,
    split_uri,
)
from sailvl.storage.commit import (
    COMMIT_MARKER,
    commit_unit,
    committed_units,
    create_once,
    is_committed,
    mark_committed,
    read_latest,
    supports_create_once,
    write_latest,
)
from sailvl.storage.retry import RetryConfig, RetryingStore

__all__ = [
    "COMMIT_MARKER",
    "ExclusiveStore",
    "NotFoundError",
    "RetryConfig",
    "RetryingStore",
    "StorageError",
    "Store",
    "TransientStorageError",
    "commit_unit",
    "committed_units",
    "create_once",
    "is_committed",
    "join",
    "mark_committed",
    "open_store",
    "read_latest",
    "split_uri",
    "supports_create_once",
    "write_latest",
]


def open_store(uri: str, *, retry: RetryConfig | None = None) -> Store:
    """Open the store rooted at `uri`, wrapped in retries (`retry=None`: defaults)."""
    scheme, rest = split_uri(uri)
    inner: Store
    if scheme == "file":
        from sailvl.storage.local import LocalStore

        inner = LocalStore(rest)
    elif scheme == "s3":
        from sailvl.storage.s3 import S3Store

        inner = S3Store(uri)
    else:
        from sailvl.storage.hdfs import open_hdfs

        inner = open_hdfs(uri)
    return RetryingStore(inner, retry)
