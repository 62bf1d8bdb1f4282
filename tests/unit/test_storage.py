"""Storage: URI helpers, the local backend, retries (fault injection), atomic commit."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from sailvl.storage import (
    NotFoundError,
    RetryConfig,
    RetryingStore,
    StorageError,
    Store,
    TransientStorageError,
    join,
    open_store,
    split_uri,
)
from sailvl.storage.local import LocalStore
from tests.fixtures import storage_contract as contract


@pytest.mark.parametrize(
    ("uri", "parts", "want"),
    [
        ("s3://b/p", ("a", "b.json"), "s3://b/p/a/b.json"),
        ("s3://b/p/", ("a/",), "s3://b/p/a"),
        ("file:///x", ("y",), "file:///x/y"),
        ("", ("a", "b"), "a/b"),
        ("/tmp/d", ("",), "/tmp/d"),
    ],
)
def test_join(uri: str, parts: tuple[str, ...], want: str) -> None:
    assert join(uri, *parts) == want


@pytest.mark.parametrize("bad", ["/abs", "a/../b", ".."])
def test_join_rejects_escaping_keys(bad: str) -> None:
    with pytest.raises(ValueError, match="key"):
        join("s3://b", bad)


def test_split_uri() -> None:
    assert split_uri("s3://b/k") == ("s3", "b/k")
    assert split_uri("/plain/path") == ("file", "/plain/path")
    with pytest.raises(ValueError, match="uri: unsupported scheme 'gs'"):
        split_uri("gs://b/k")


def test_import_is_light() -> None:
    # open_store on file:// must not drag boto3 or pyarrow in.
    code = (
        "import sys, sailvl.storage as s, tempfile; s.open_store(tempfile.mkdtemp()).list();"
        "print(sorted(m for m in ('boto3','pyarrow','torch') if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_local_roundtrip_list_delete(tmp_path: str) -> None:
    assert isinstance(open_store(f"file://{tmp_path}/root"), Store)
    contract.check_roundtrip_list_delete(lambda path: open_store(f"file://{tmp_path}/root/{path}"))


def test_local_write_is_atomic_and_hides_temps(
    tmp_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(str(tmp_path))
    store.write_bytes("k", b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    # A write that fails before the rename leaves the old object intact and no temp file.
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StorageError, match="No space"):
        store.write_bytes("k", b"new-but-torn")
    monkeypatch.undo()
    assert store.read_bytes("k") == b"old"
    assert os.listdir(tmp_path) == ["k"]
    # A crashed writer's temp file is never listed, and sweep_temp removes it.
    (tmp_path / ".tmp-deadbeef").write_bytes(b"partial")
    assert list(store.list()) == ["k"]
    assert store.sweep_temp() == 1


class FlakyStore:
    """Fault injection: the first `failures` calls of each operation raise."""

    def __init__(self, inner: Store, failures: int, exc: type[Exception] = TransientStorageError):
        self.inner, self.failures, self.exc = inner, failures, exc
        self.uri = inner.uri
        self.calls: dict[str, int] = {}

    def _hit(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        if self.calls[op] <= self.failures:
            raise self.exc(f"injected failure {self.calls[op]} of {op}")

    def read_bytes(self, key: str) -> bytes:
        self._hit("read")
        return self.inner.read_bytes(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._hit("write")
        self.inner.write_bytes(key, data)

    def exists(self, key: str) -> bool:
        self._hit("exists")
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self._hit("list")
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._hit("delete")
        self.inner.delete(key)

    def open(self, key: str) -> BinaryIO:
        self._hit("open")
        return self.inner.open(key)


def test_retry_recovers_from_transient_failures(tmp_path: str) -> None:
    sleeps: list[float] = []
    flaky = FlakyStore(LocalStore(str(tmp_path)), failures=3)
    cfg = RetryConfig(attempts=4, base_delay_s=0.1, max_delay_s=0.3)
    store = RetryingStore(flaky, cfg, sleep=sleeps.append)
    store.write_bytes("k", b"v")
    assert store.read_bytes("k") == b"v"
    assert list(store.list()) == ["k"]
    assert flaky.calls == {"write": 4, "read": 4, "list": 4}
    assert len(sleeps) == 9
    # Full jitter: delay n is within [0, min(max, base * 2**n)].
    bounds = [0.1, 0.2, 0.3] * 3
    assert all(0 <= s <= b for s, b in zip(sleeps, bounds, strict=True))


def test_retry_gives_up_after_attempts(tmp_path: str) -> None:
    flaky = FlakyStore(LocalStore(str(tmp_path)), failures=10)
    store = RetryingStore(flaky, RetryConfig(attempts=3, base_delay_s=0), sleep=lambda s: None)
    with pytest.raises(TransientStorageError, match="injected failure 3"):
        store.read_bytes("k")
    assert flaky.calls["read"] == 3


@pytest.mark.parametrize("exc", [NotFoundError, StorageError])
def test_permanent_errors_are_not_retried(tmp_path: str, exc: type[Exception]) -> None:
    flaky = FlakyStore(LocalStore(str(tmp_path)), failures=1, exc=exc)
    store = RetryingStore(flaky, RetryConfig(attempts=5), sleep=lambda s: None)
    with pytest.raises(exc):
        store.exists("k")
    assert flaky.calls["exists"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"base_delay_s": -1}, "base_delay_s"),
        ({"base_delay_s": 2, "max_delay_s": 1}, "max_delay_s"),
    ],
)
def test_retry_config_validation(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryConfig(**kwargs)  # type: ignore[arg-type]


def test_commit_unit_and_latest(tmp_path: str) -> None:
    contract.check_commit_and_latest(open_store(str(tmp_path)))


def test_open_store_hdfs_path_via_pyarrow_localfs(tmp_path: str) -> None:
    # HDFS needs libhdfs + a JVM (absent here); the same PyArrowStore code runs on
    # pyarrow's local filesystem.
    from pyarrow import fs

    from sailvl.storage.hdfs import PyArrowStore

    store = PyArrowStore(fs.LocalFileSystem(), str(tmp_path), f"pa://{tmp_path}")
    store.write_bytes("d/a", b"1")
    store.write_bytes("d/b", b"2")
    assert list(store.list("d/")) == ["d/a", "d/b"]
    assert store.read_bytes("d/b") == b"2" and store.exists("d/a")
    with store.open("d/a") as f:
        assert f.read() == b"1"
    store.delete("d/a")
    assert not store.exists("d/a")
    with pytest.raises(NotFoundError):
        store.read_bytes("d/a")
