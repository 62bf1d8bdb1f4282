"""The S3 backend against a real S3-compatible server (tests/fixtures/s3server.py): the
shared store contract (tests/fixtures/storage_contract.py), then what is S3's own."""

from __future__ import annotations

import pytest

from sailvl.storage import StorageError, open_store
from sailvl.storage.s3 import S3Store
from tests.fixtures import storage_contract as contract
from tests.fixtures.s3server import S3Server, assert_server_is_expected


def test_s3_roundtrip_list_delete(s3_env: str, s3_server: S3Server) -> None:
    assert_server_is_expected(s3_server)  # SeaweedFS unless SAILVL_TEST_S3=moto
    contract.check_roundtrip_list_delete(lambda path: open_store(f"s3://{s3_env}/{path}"))


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
    contract.check_commit_and_latest(open_store(f"s3://{s3_env}/ckpt"))
