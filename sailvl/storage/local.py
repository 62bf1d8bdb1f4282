"""`file://` (and plain path) backend.

Atomic writes: data goes to a hidden temp file in the destination directory, is
fsync'ed, then `os.replace`d onto the key. `os.replace` is atomic on POSIX within one
file system, so a reader sees the old file or the new one, never a torn write; a crash
leaves at most a `.tmp-*` file, which `list` hides and `sweep_temp` may remove.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO

from sailvl.storage.base import NotFoundError, StorageError, TransientStorageError, check_key

TEMP_PREFIX = ".tmp-"
# errno values a retry can fix (an interrupted call, a busy or briefly missing NFS mount).
_TRANSIENT_ERRNO = {errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE}


def _translate(exc: OSError, key: str) -> StorageError:
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"file: {key!r} not found")
    if exc.errno in _TRANSIENT_ERRNO:
        return TransientStorageError(f"file: {key!r}: {exc}")
    return StorageError(f"file: {key!r}: {exc}")


class LocalStore:
    """A store rooted at a local directory (created on first write)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.uri = "file://" + self.root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, check_key(key))

    def read_bytes(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except IsADirectoryError as exc:
            raise NotFoundError(f"file: {key!r} is a directory") from exc
        except OSError as exc:
            raise _translate(exc, key) from exc

    def _staged(self, key: str, data: bytes) -> tuple[str, str]:
        """(path, temp): `data` fsync'ed in a hidden temp file next to the key's path."""
        path = self._path(key)
        directory = os.path.dirname(path)
        tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return path, tmp

    def _publish(self, key: str, data: bytes, move: Callable[[str, str], None]) -> bool:
        """Stage `data`, then `move(temp, path)`; False if the key exists (link's
        EEXIST). The temp file never outlives the call."""
        tmp = ""
        try:
            path, tmp = self._staged(key, data)
            move(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise _translate(exc, key) from exc
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._publish(key, data, os.replace)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write `key` only if absent: the staged temp file is hard-linked onto the key.
        `link(2)` fails with EEXIST when the key exists, atomically (the file system
        checks and creates the name in one step), so of racing writers exactly one wins
        and readers never see a partial file."""
        return self._publish(key, data, os.link)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        # Walk only the deepest directory the prefix names, then filter by string prefix
        # (a prefix may end mid-name, as on S3: "part-0" matches "part-00001.parquet").
        prefix = prefix.lstrip("/")
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = os.path.join(self.root, base)
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _translate(exc, key) from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except OSError as exc:
            raise _translate(exc, key) from exc

    def sweep_temp(self) -> int:
        """Remove temp files left by crashed writers; return how many were removed."""
        removed = 0
        for dirpath, _dirs, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
        return removed
