"""Conditional create (`create_exclusive` / `create_once`, the base of caption claims and
first-commit-wins) against the real servers: SeaweedFS's S3 gateway (If-None-Match on
PutObject and on CompleteMultipartUpload) and HDFS (rename without overwrite, over WebHDFS
and through the `hdfs://` path), plus a CaptionJob's claims on SeaweedFS."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sailvl.caption.claims import Claimer
from sailvl.storage import create_once, open_store
from sailvl.storage.s3 import S3Store
from tests.fixtures.hdfsserver import HdfsServer
from tests.fixtures.s3server import S3Server, assert_server_is_expected


def race(store: Any, key: str, n: int = 24) -> list[bool]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: create_once(store, key, b"writer %d" % i), range(n)))


def test_s3_conditional_put_has_one_winner(s3_env: str, s3_server: S3Server) -> None:
    assert_server_is_expected(s3_server)  # SeaweedFS unless SAILVL_TEST_S3=moto
    store = open_store(f"s3://{s3_env}/c")
    wins = race(store, "claim")
    assert wins.count(True) == 1
    assert store.read_bytes("claim") == b"writer %d" % wins.index(True)
    assert create_once(store, "claim", b"late") is False


def test_s3_conditional_multipart_complete_has_one_winner(s3_env: str) -> None:
    store = S3Store(f"s3://{s3_env}/mp", multipart_threshold=5 << 20)
    first = b"a" * (6 << 20)
    assert store.create_exclusive("big", first) is True
    assert store.create_exclusive("big", b"b" * (6 << 20)) is False
    assert store.read_bytes("big") == first
    uploads = store.client.list_multipart_uploads(Bucket=s3_env).get("Uploads", [])
    assert uploads == []  # the losing upload was aborted, none left open


def test_s3_claims_split_shards_once(s3_env: str) -> None:
    store = open_store(f"s3://{s3_env}/job")
    keys = [f"shards/{i:03d}.parquet" for i in range(40)]
    got: list[str] = []

    def pod(k: int) -> list[str]:
        c = Claimer(store, keys, lambda: set(), index=k, count=4, max_takeovers=0)
        out = []
        while (claim := c.next()) is not None:
            out.append(claim.key)
        return out

    with ThreadPoolExecutor(4) as pool:
        for part in pool.map(pod, range(4)):
            got += part
    assert sorted(got) == keys


@pytest.mark.timeout(600)
@pytest.mark.parametrize("client", ["webhdfs", "hdfs"])
def test_hdfs_create_once_has_one_winner(
    client: str, hdfs_env: str, hdfs_server: HdfsServer
) -> None:
    uri = (
        hdfs_server.webhdfs_uri(hdfs_env) if client == "webhdfs" else hdfs_server.hdfs_uri(hdfs_env)
    )
    store = open_store(uri)
    wins = race(store, "claims/x", n=8)
    assert wins.count(True) == 1
    assert store.read_bytes("claims/x") == b"writer %d" % wins.index(True)
    assert list(store.list("claims/")) == ["claims/x"]  # no temp names left visible
