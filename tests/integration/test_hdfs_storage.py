"""The HDFS stores against a real HDFS (Hadoop's MiniDFSCluster, tests/fixtures/hdfsserver.py).

The same contract the file and S3 backends pass (tests/fixtures/storage_contract.py),
for both ways a URI reaches it here:
`webhdfs://host:http_port/...` and `hdfs://host:rpc_port/...` (no libhdfs in this
environment, so `open_hdfs` falls back to WebHDFS at `SAILVL_WEBHDFS_ADDRESS`).
"""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from sailvl.storage import StorageError, open_store
from sailvl.storage.hdfs import open_hdfs
from sailvl.storage.webhdfs import WebHdfsStore
from tests.fixtures import storage_contract as contract
from tests.fixtures.hdfsserver import HdfsServer

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(params=["webhdfs", "hdfs"])
def uri(request: pytest.FixtureRequest, hdfs_env: str, hdfs_server: HdfsServer) -> str:
    if request.param == "webhdfs":
        return hdfs_server.webhdfs_uri(hdfs_env)
    return hdfs_server.hdfs_uri(hdfs_env)


def raw_names(server: HdfsServer, path: str) -> list[str]:
    """File names in an HDFS directory, asked of the namenode directly (temps included)."""
    url = f"http://127.0.0.1:{server.http_port}/webhdfs/v1{path}?op=LISTSTATUS"
    with urllib.request.urlopen(url) as resp:
        return sorted(st["pathSuffix"] for st in json.load(resp)["FileStatuses"]["FileStatus"])


def test_hdfs_roundtrip_list_delete(uri: str, hdfs_server: HdfsServer) -> None:
    contract.check_roundtrip_list_delete(lambda path: open_store(f"{uri}/{path}"))


def test_hdfs_overwrite_is_atomic_and_leaves_no_temps(uri: str, hdfs_server: HdfsServer) -> None:
    """Replacing an existing file is one rename with OVERWRITE: a reader polling the key
    sees the old or the new content, whole; no temp file is left behind."""
    store = open_store(uri)
    old, new = b"o" * 300_000, b"n" * 200_000
    store.write_bytes("k", old)
    seen: set[bytes] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll() -> None:
        reader = open_store(uri)
        while not stop.is_set():
            try:
                seen.add(reader.read_bytes("k"))
            except BaseException as exc:  # a missing or partial file would land here
                errors.append(exc)
                return

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for i in range(6):
            store.write_bytes("k", new if i % 2 == 0 else old)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen <= {old, new} and seen
    assert store.read_bytes("k") == old  # the last write (i = 5) was `old`
    store.write_bytes("k", b"last")
    assert store.read_bytes("k") == b"last"
    assert raw_names(hdfs_server, hdfs_server_path(uri)) == ["k"]


def hdfs_server_path(uri: str) -> str:
    return "/" + uri.split("://", 1)[1].split("/", 1)[1]


def test_hdfs_failed_write_keeps_the_old_file(hdfs_env: str, hdfs_server: HdfsServer) -> None:
    store = open_hdfs(hdfs_server.webhdfs_uri(hdfs_env))
    assert isinstance(store, WebHdfsStore)
    store.write_bytes("k", b"old")
    real = store._json

    def no_rename(method: str, path: str, op: str, key: str, **params: object) -> object:
        if op == "RENAME":
            raise StorageError("injected: rename refused")
        return real(method, path, op, key, **params)

    store._json = no_rename  # type: ignore[method-assign]
    with pytest.raises(StorageError, match="injected"):
        store.write_bytes("k", b"new")
    store._json = real  # type: ignore[method-assign]
    assert store.read_bytes("k") == b"old"
    assert raw_names(hdfs_server, hdfs_env) == ["k"]  # the temp was deleted


def test_hdfs_open_seeks_with_ranged_reads(uri: str) -> None:
    store = open_store(uri)
    data = bytes(range(256)) * 12_000  # 3 MB: several 1 MiB buffer fills
    store.write_bytes("big", data)
    assert store.read_bytes("big") == data
    with store.open("big") as f:
        f.seek(-10, 2)
        assert f.read() == data[-10:]
        f.seek(1_500_000)
        assert f.read(5) == data[1_500_000:1_500_005]
        f.seek(0)
        assert f.read() == data


def test_hdfs_commit_and_latest(uri: str) -> None:
    contract.check_commit_and_latest(open_store(f"{uri}/ckpt"))


def test_hdfs_client_choice(
    hdfs_env: str, hdfs_server: HdfsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = hdfs_server.hdfs_uri(hdfs_env)
    # No libhdfs here: auto falls back to WebHDFS at SAILVL_WEBHDFS_ADDRESS.
    store = open_hdfs(uri)
    assert isinstance(store, WebHdfsStore)
    assert store.http_base == f"http://127.0.0.1:{hdfs_server.http_port}"
    # Asking for libhdfs by name fails loudly instead of falling back.
    monkeypatch.setenv("SAILVL_HDFS_CLIENT", "libhdfs")
    with pytest.raises(StorageError, match="cannot connect"):
        open_hdfs(uri)
    monkeypatch.setenv("SAILVL_HDFS_CLIENT", "jni")
    with pytest.raises(ValueError, match="SAILVL_HDFS_CLIENT"):
        open_hdfs(uri)
    monkeypatch.setenv("SAILVL_HDFS_CLIENT", "webhdfs")
    monkeypatch.delenv("SAILVL_WEBHDFS_ADDRESS")
    assert open_hdfs(uri).http_base == "http://127.0.0.1:9870"  # Hadoop 3's default port
