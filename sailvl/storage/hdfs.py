"""`hdfs://namenode:port/path` backend on `pyarrow.fs.HadoopFileSystem`.

The paper streamed its data from HDFS. pyarrow talks to HDFS through libhdfs (JNI): it
needs a JVM, `HADOOP_HOME` and `CLASSPATH` (`hadoop classpath --glob`) in the pod. None
of that exists in CI, so this backend is exercised only through a generic pyarrow
filesystem in the tests (`PyArrowStore(pyarrow.fs.LocalFileSystem(), ...)`): the same
code path minus the JNI connection.

Atomic writes as on `file://`: write a temp name in the same directory, then
`move` (an HDFS rename, atomic in the namenode).
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from sailvl.storage.base import NotFoundError, StorageError, TransientStorageError, check_key

TEMP_PREFIX = ".tmp-"


def _translate(exc: Exception, key: str) -> StorageError:
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"hdfs: {key!r} not found")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientStorageError(f"hdfs: {key!r}: {exc}")
    return StorageError(f"hdfs: {key!r}: {exc}")


class PyArrowStore:
    """A store on any `pyarrow.fs.FileSystem`, rooted at `root` (a path in that fs)."""

    def __init__(self, fs: Any, root: str, uri: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.uri = uri

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, check_key(key))

    def read_bytes(self, key: str) -> bytes:
        try:
            with self.fs.open_input_stream(self._path(key)) as f:
                return bytes(f.read())
        except OSError as exc:
            raise _translate(exc, key) from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = posixpath.join(posixpath.dirname(path), f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        try:
            self.fs.create_dir(posixpath.dirname(path), recursive=True)
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, path)
        except OSError as exc:
            raise _translate(exc, key) from exc

    def exists(self, key: str) -> bool:
        from pyarrow.fs import FileType

        return bool(self.fs.get_file_info(self._path(key)).type == FileType.File)

    def list(self, prefix: str = "") -> Iterator[str]:
        from pyarrow.fs import FileSelector, FileType

        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        sel = FileSelector(posixpath.join(self.root, base), allow_not_found=True, recursive=True)
        keys = []
        for info in self.fs.get_file_info(sel):
            if info.type != FileType.File or info.base_name.startswith(TEMP_PREFIX):
                continue
            key = posixpath.relpath(info.path, self.root)
            if key.startswith(prefix):
                keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        try:
            self.fs.delete_file(self._path(key))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _translate(exc, key) from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self.fs.open_input_file(self._path(key))  # type: ignore[no-any-return]
        except OSError as exc:
            raise _translate(exc, key) from exc


def open_hdfs(uri: str) -> PyArrowStore:
    """Connect to `hdfs://host[:port]/path` (needs libhdfs and a JVM, see above)."""
    from urllib.parse import urlparse

    from pyarrow import fs

    parsed = urlparse(uri)
    if not parsed.hostname:
        raise ValueError(f"uri: no namenode host in {uri!r}")
    hdfs = fs.HadoopFileSystem(parsed.hostname, parsed.port or 8020)
    return PyArrowStore(hdfs, parsed.path or "/", uri.rstrip("/"))
