"""Faults injected between the S3 client and the real S3 server (SeaweedFS).

`tests.fixtures.faultproxy.FaultProxy` sits on loopback between `sailvl.storage` and
SeaweedFS and, at a seeded rate, answers 500 / 503 SlowDown, stalls past the client's
read timeout, resets connections mid-body and truncates bodies. Under 5 % faults the
storage paths (write / read / list / unit commit of many objects) and the streaming
reader across a resume must finish with every object or sample exactly once; at 100 %
each operation must fail with an error naming the object, in bounded time, leaving no
partial object at its final key. Objects are checked directly on SeaweedFS (not through
the proxy) by their SHA-256; retries are counted in `sailvl_storage_retries_total`.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sailvl.storage import COMMIT_MARKER, RetryConfig, RetryingStore, StorageError, commit_unit
from sailvl.storage.commit import committed_units, read_latest, write_latest
from sailvl.storage.s3 import S3Store
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.s3server import S3Server, assert_server_is_expected

# Short client timeouts so a `stall` (3 s) is a timeout, and short backoffs so the test is quick.
READ_TIMEOUT_S = 1.0
RETRY = RetryConfig(attempts=6, base_delay_s=0.02, max_delay_s=0.2)


def retries_by_reason() -> dict[str, float]:
    """sailvl_storage_retries_total summed per `reason` (default registry)."""
    from prometheus_client import REGISTRY

    out: dict[str, float] = {}
    for m in REGISTRY.collect():
        for s in m.samples:
            if s.name == "sailvl_storage_retries_total":
                out[s.labels["reason"]] = out.get(s.labels["reason"], 0.0) + s.value
    return out


def retries_total() -> float:
    """Sum of sailvl_storage_retries_total over all label sets."""
    return sum(retries_by_reason().values())


def store_via(
    proxy: FaultProxy, bucket: str, *, timeout_s: float = READ_TIMEOUT_S, retry: RetryConfig = RETRY
) -> RetryingStore:
    inner = S3Store(
        f"s3://{bucket}/p",
        endpoint_url=proxy.endpoint,
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
    )
    return RetryingStore(inner, retry)


def upstream_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    """Every object in `bucket`, read straight from SeaweedFS (no proxy)."""
    client, out = server.client(), {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_storage_many_objects_under_5pct_faults(s3_env: str, s3_server: S3Server) -> None:
    assert_server_is_expected(s3_server)
    rng = random.Random(5)
    objects = {f"obj/{i:04d}.bin": rng.randbytes(rng.randrange(1, 48 << 10)) for i in range(150)}
    units = {
        f"ckpt/step-{n}": {f"f{j}.bin": rng.randbytes(rng.randrange(1, 32 << 10)) for j in range(4)}
        for n in range(6)
    }
    before, reasons_before = retries_total(), retries_by_reason()
    with fault_proxy(s3_server.endpoint, rate=0.05, seed=11, stall_s=3.0) as proxy:
        store = store_via(proxy, s3_env)
        for key, data in objects.items():
            store.write_bytes(key, data)
        for unit, files in units.items():
            commit_unit(store, unit, files)
            write_latest(store, unit)
        assert list(store.list("obj/")) == sorted(objects)
        for key, data in objects.items():
            assert store.read_bytes(key) == data, key
            assert store.exists(key)
        assert committed_units(store, "ckpt/") == sorted(units)
        assert read_latest(store) == "ckpt/step-5"
        for unit, files in units.items():
            for name, data in files.items():
                with store.open(f"{unit}/{name}") as f:
                    assert f.read() == data
        injected = sum(proxy.injected.values())
    # Every fault kind fired, and each was retried rather than passed through or fatal.
    assert set(proxy.injected) == {"500", "503", "stall", "reset", "truncate"}, proxy.injected
    assert retries_total() - before >= injected > 0
    after = retries_by_reason()
    reasons = {r for r, v in after.items() if v > reasons_before.get(r, 0.0)}
    assert {"throttled", "server_error", "timeout"} <= reasons, after
    assert reasons & {"connection", "truncated"}, after
    # On SeaweedFS itself: exactly the intended objects, each whole (digest equal).
    want = {f"p/{k}": sha(v) for k, v in objects.items()}
    for unit, files in units.items():
        want.update({f"p/{unit}/{n}": sha(d) for n, d in files.items()})
        want[f"p/{unit}/{COMMIT_MARKER}"] = ""
    want["p/latest"] = sha(b"ckpt/step-5")
    got = upstream_objects(s3_server, s3_env)
    assert sorted(got) == sorted(want)
    assert {k: sha(v) for k, v in got.items() if want[k]} == {k: v for k, v in want.items() if v}


def test_streaming_reader_resume_under_5pct_faults(
    s3_env: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sailvl.data.dataset import Dataset, WriterConfig
    from sailvl.data.reader import ReaderConfig, StreamingReader
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    assert_server_is_expected(s3_server)
    uri = f"s3://{s3_env}/synth"
    cfg = ReaderConfig(seed=1, world_size=1, rank=0, num_workers=2, epochs=1, block_size=30)

    def ids(reader: Any) -> list[str]:
        return [it["id"] for it in reader]

    before = retries_total()
    with fault_proxy(s3_server.endpoint, rate=0.05, seed=3, stall_s=3.0) as proxy:
        # Every S3 call of the writer and the reader goes through the proxy.
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("SAILVL_S3_READ_TIMEOUT", str(READ_TIMEOUT_S))
        write_synthetic(
            uri, 120, SyntheticConfig(seed=7, max_size=64), WriterConfig(max_samples_per_shard=10)
        )
        Dataset.open(uri).validate(deep=True)
        full = ids(StreamingReader([uri], cfg))
        reader = StreamingReader([uri], cfg)
        head = [it["id"] for _, it in zip(range(53), reader, strict=False)]
        resumed = StreamingReader([uri], cfg)
        resumed.load_state_dict(reader.state_dict())
        tail = ids(resumed)
        injected = sum(proxy.injected.values())
    every = sorted(f"synthetic-7-{i:08d}" for i in range(120))
    assert sorted(full) == every  # exactly once
    assert head + tail == full  # the resume continues where the first reader stopped
    assert injected > 0 and retries_total() - before >= injected
    # The dataset as committed on SeaweedFS itself validates (sizes, digests, rows).
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_server.endpoint)
    Dataset.open(uri).validate(deep=True)


@pytest.mark.parametrize("fault", ["500", "503", "stall", "reset", "truncate"])
def test_every_operation_fails_cleanly_under_100pct_faults(
    s3_env: str, s3_server: S3Server, fault: str
) -> None:
    assert_server_is_expected(s3_server)
    s3_server.client().put_object(Bucket=s3_env, Key="p/there.bin", Body=b"x" * 5000)
    data = random.Random(1).randbytes(20000)
    with fault_proxy(s3_server.endpoint, rate=1.0, seed=1, faults=(fault,), stall_s=3.0) as proxy:
        # Fewer, shorter tries than under 5 %: every one of them fails here.
        store = store_via(
            proxy, s3_env, timeout_s=0.5, retry=RetryConfig(attempts=3, base_delay_s=0.02)
        )
        ops: dict[str, tuple[str, Callable[[], object]]] = {
            "write": ("new.bin", lambda: store.write_bytes("new.bin", data)),
            "read": ("there.bin", lambda: store.read_bytes("there.bin")),
            "open": ("there.bin", lambda: store.open("there.bin").read()),
            "exists": ("there.bin", lambda: store.exists("there.bin")),
            "list": ("dir", lambda: list(store.list("dir/"))),
            "delete": ("there.bin", lambda: store.delete("there.bin")),
            "commit": ("unit/a.bin", lambda: commit_unit(store, "unit", {"a.bin": data})),
        }
        for op, (key, call) in ops.items():
            t0 = time.monotonic()
            with pytest.raises(StorageError) as info:
                call()
            # Bounded: 3 attempts x (0.5 s timeout + backoff) is ~2 s; 60 s is generous.
            assert time.monotonic() - t0 < 60, op
            msg = str(info.value)
            assert f"s3://{s3_env}/p/{key}" in msg and "attempts" in msg, (op, msg)
    got = upstream_objects(s3_server, s3_env)
    # Nothing half-written: the final keys hold nothing, or the whole object (a reset
    # after the server took the PUT), never a prefix; the unit is not committed.
    assert f"p/unit/{COMMIT_MARKER}" not in got
    for key in ("p/new.bin", "p/unit/a.bin"):
        assert got.get(key, data) == data, key
    assert not [k for k in got if k not in ("p/there.bin", "p/new.bin", "p/unit/a.bin")]


def test_open_stream_resumes_after_mid_body_breaks(s3_env: str, s3_server: S3Server) -> None:
    """A stream from `open` that is reset or cut mid-body is reopened and continues at
    the byte it reached (before the fix the read raised the reset as an error)."""
    assert_server_is_expected(s3_server)
    rng = random.Random(9)
    objects = {f"big/{i:02d}.bin": rng.randbytes(200_000 + i) for i in range(12)}
    client = s3_server.client()
    for key, data in objects.items():
        client.put_object(Bucket=s3_env, Key=f"p/{key}", Body=data)
    with fault_proxy(s3_server.endpoint, rate=0.3, seed=4, faults=("reset", "truncate")) as proxy:
        store = store_via(proxy, s3_env)
        for key, data in objects.items():
            with store.open(key) as f:
                assert f.read() == data, key
        assert sum(proxy.injected.values()) > 0


def test_multipart_writes_under_faults_commit_whole_objects(
    s3_env: str, s3_server: S3Server
) -> None:
    """Multipart uploads (parts, complete) through the proxy at 10 %: each object lands
    whole on SeaweedFS, and no upload is left open."""
    assert_server_is_expected(s3_server)
    rng = random.Random(2)
    objects = {f"mp/{i}.bin": rng.randbytes((11 << 20) + i) for i in range(3)}
    with fault_proxy(s3_server.endpoint, rate=0.1, seed=8, stall_s=3.0) as proxy:
        inner = S3Store(
            f"s3://{s3_env}/p",
            endpoint_url=proxy.endpoint,
            read_timeout=2.0,
            multipart_threshold=5 << 20,
        )
        store = RetryingStore(inner, RETRY)
        for key, data in objects.items():
            store.write_bytes(key, data)
        requests, injected = proxy.requests, sum(proxy.injected.values())
    assert requests >= 3 * 4 and injected > 0  # create, >= 2 parts, complete per object
    got = upstream_objects(s3_server, s3_env)
    assert {k: sha(v) for k, v in got.items()} == {f"p/{k}": sha(v) for k, v in objects.items()}
    assert not s3_server.client().list_multipart_uploads(Bucket=s3_env).get("Uploads")


def test_checkpoint_upload_and_download_under_5pct_faults(
    s3_env: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """`sailvl.model.checkpoint.upload_dir` / `download_to_temp` (the checkpoint save and
    load of a remote run) through the proxy: the copy is exact, the marker is written
    last, and SeaweedFS holds the same bytes."""
    import shutil

    from sailvl.model.checkpoint import download_to_temp, upload_dir
    from sailvl.storage import open_store
    from sailvl.storage.commit import committed_files

    assert_server_is_expected(s3_server)
    rng = random.Random(21)
    files = {
        "config.json": b'{"model_type": "tiny"}',
        "model-00001-of-00002.safetensors": rng.randbytes(3 << 20),
        "model-00002-of-00002.safetensors": rng.randbytes(1 << 20),
        "tokenizer/vocab.txt": rng.randbytes(300_000),
    }
    files.update({f"extra/{i:03d}.bin": rng.randbytes(rng.randrange(1, 20_000)) for i in range(40)})
    src = tmp_path / "ckpt"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    uri = f"s3://{s3_env}/runs/s1/step-00000010"
    with fault_proxy(s3_server.endpoint, rate=0.05, seed=13, stall_s=3.0) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("SAILVL_S3_READ_TIMEOUT", str(READ_TIMEOUT_S))
        assert upload_dir(str(src), uri) == {k: len(v) for k, v in files.items()}
        dest = download_to_temp(uri)
        injected = sum(proxy.injected.values())
    try:
        for name, data in files.items():
            assert Path(dest, name).read_bytes() == data, name
    finally:
        shutil.rmtree(dest)
    assert injected > 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_server.endpoint)
    assert committed_files(open_store(uri), "") == {k: len(v) for k, v in files.items()}
    got = upstream_objects(s3_server, s3_env)
    prefix = "runs/s1/step-00000010/"
    assert {k[len(prefix) :]: sha(v) for k, v in got.items() if not k.endswith(COMMIT_MARKER)} == {
        k: sha(v) for k, v in files.items()
    }
