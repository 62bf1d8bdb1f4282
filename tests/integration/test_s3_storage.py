"""The S3 backend against a real S3-compatible server (tests/fixtures/s3server.py)."""

from __future__ import annotations

import pytest

from sailvl.storage import (
    NotFoundError,
    StorageError,
    commit_unit,
    committed_units,
    open_store,
    read_latest,
    write_latest,
)
from sailvl.storage.s3 import S3Store
from tests.fixtures.s3server import S3Server, assert_server_is_expected


def test_s3_roundtrip_list_delete(s3_env: str, s3_server: S3Server) -> None:
    assert_server_is_expected(s3_server)  # SeaweedFS unless SAILVL_TEST_S3=moto
    store = open_store(f"s3://{s3_env}/pre/fix")
    store.write_bytes("a/x", b"1")
    store.write_bytes("a/y", b"22")
    store.write_bytes("b", b"333")
    assert store.read_bytes("a/y") == b"22"
    assert list(store.list()) == ["a/x", "a/y", "b"]
    assert list(store.list("a/")) == ["a/x", "a/y"]
    assert store.exists("b") and not store.exists("zz")
    with store.open("b") as f:
        assert f.read() == b"333"
    store.delete("b")
    assert not store.exists("b")
    with pytest.raises(NotFoundError):
        store.read_bytes("b")
    # A sibling prefix does not leak into the listing.
    open_store(f"s3://{s3_env}/pre/fixture").write_bytes("c", b"")
    assert list(store.list()) == ["a/x", "a/y"]


def test_s3_list_paginates(s3_env: str) -> None:
    store = S3Store(f"s3://{s3_env}/many")
    for i in range(7):
        store.write_bytes(f"k{i}", b"")
    real = store.client.list_objects_v2
    pages = []

    def small_pages(**kw: object) -> dict[str, object]:
        resp = real(MaxKeys=3, **kw)
        pages.append(resp)
        return resp  # type: ignore[no-any-return]

    store.client.list_objects_v2 = small_pages
    assert list(store.list()) == [f"k{i}" for i in range(7)]
    assert len(pages) == 3


def test_s3_multipart_write(s3_env: str) -> None:
    store = S3Store(f"s3://{s3_env}", multipart_threshold=5 << 20)
    data = bytes(range(256)) * (45 << 10)  # 11.25 MiB: 3 parts
    store.write_bytes("big", data)
    assert store.read_bytes("big") == data


def test_s3_missing_bucket_is_a_clear_error(s3_env: str) -> None:
    with pytest.raises(StorageError):
        open_store("s3://no-such-bucket-sailvl").write_bytes("k", b"v")


def test_s3_commit_and_latest(s3_env: str) -> None:
    store = open_store(f"s3://{s3_env}/ckpt")
    commit_unit(store, "step-5", {"model.safetensors": b"w"})
    store.write_bytes("step-6/model.safetensors", b"partial")  # no marker: ignored
    assert committed_units(store) == ["step-5"]
    write_latest(store, "step-5")
    assert read_latest(store) == "step-5"
