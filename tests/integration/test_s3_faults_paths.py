"""The real paths of issue 17 section 3 under 100 % faults, cut in the middle.

`tests.fixtures.faultproxy.FaultProxy(after=N, rate=1.0)` relays the first N requests
clean and fails every later one (500, 503 SlowDown, stalls past the 1 s read timeout,
resets, truncation in turn), so each path is cut part-way through, which is where a
half-written result could appear. Each must fail in bounded time with an error that
names the object (its full `s3://` URI and the attempts), and leave nothing committed
that is not whole. Checked on SeaweedFS directly. The 5 % runs of the same paths are in
test_s3_faults.py, test_caption_s3_faults.py and test_import_faults.py.
"""

from __future__ import annotations

import glob
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sailvl.storage import COMMIT_MARKER, RetryingStore, StorageError
from sailvl.storage.s3 import S3Store
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.s3server import S3Server, assert_server_is_expected
from tests.integration.test_s3_faults import READ_TIMEOUT_S, RETRY, upstream_objects

pytestmark = pytest.mark.timeout(300)
BOUND_S = 60  # 5 attempts x (<= 1 s timeout + <= 3 s backoff in all): ~10 s at worst


def through(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Every `open_store` store of the code under test talks to `endpoint`."""
    for name in ("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"):
        monkeypatch.setenv(name, endpoint)
    monkeypatch.setenv("SAILVL_S3_READ_TIMEOUT", str(READ_TIMEOUT_S))
    monkeypatch.setenv("SAILVL_S3_CONNECT_TIMEOUT", str(READ_TIMEOUT_S))


def fails_cleanly(call: Callable[[], object], uri_prefix: str, *errors: type) -> None:
    """`call` raises one of `errors` (default StorageError) within BOUND_S, and the
    message names an object under `uri_prefix` and the attempts."""
    t0 = time.monotonic()
    with pytest.raises(errors or StorageError) as info:
        call()
    took, msg = time.monotonic() - t0, str(info.value)
    assert took < BOUND_S, (took, msg)
    assert re.search(re.escape(uri_prefix) + r"\S*: gave up after \d+ attempts", msg), msg


def test_checkpoint_save_and_load_cut_by_100pct_faults(
    s3_env: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`upload_dir` (a checkpoint save) cut after 12 requests: StorageError naming the
    file, no commit marker, every object that landed is whole. `download_to_temp` (the
    load) cut after 3: StorageError naming the file, its temp folder removed."""
    from sailvl.model.checkpoint import download_to_temp, upload_dir

    assert_server_is_expected(s3_server)
    rng = random.Random(3)
    files = {f"extra/{i:03d}.bin": rng.randbytes(rng.randrange(1, 30_000)) for i in range(30)}
    files["config.json"] = b'{"model_type": "tiny"}'
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    uri = f"s3://{s3_env}/runs/s1/step-00000010"
    with fault_proxy(s3_server.endpoint, rate=1.0, seed=6, after=12) as proxy:
        through(monkeypatch, proxy.endpoint)
        fails_cleanly(lambda: upload_dir(str(tmp_path), uri), uri + "/")
    got = {k: v for k, v in upstream_objects(s3_server, s3_env).items()}
    prefix = "runs/s1/step-00000010/"
    assert f"{prefix}{COMMIT_MARKER}" not in got  # not committed: a resume ignores it
    assert 0 < len(got) < len(files)  # cut part-way
    assert all(files[k[len(prefix) :]] == v for k, v in got.items())  # each one whole

    tag = f"sailvl-faulttest-{uuid.uuid4().hex[:8]}-"
    with fault_proxy(s3_server.endpoint, rate=1.0, seed=7, after=3) as proxy:
        through(monkeypatch, proxy.endpoint)
        fails_cleanly(lambda: download_to_temp(uri, prefix=tag), uri + "/")
    assert not glob.glob(os.path.join(tempfile.gettempdir(), tag + "*"))  # nothing left


def test_streaming_reader_cut_by_100pct_faults_then_resumed(
    s3_env: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader (prefetch and decode threads) raises the store's error naming the
    shard (a `ShardError` carrying the store's final error), in bounded time, rather
    than hanging or dropping the shard; its state at that point resumes (without
    faults) to every sample exactly once."""
    from sailvl.data.dataset import WriterConfig
    from sailvl.data.manifest import ShardError
    from sailvl.data.reader import ReaderConfig, StreamingReader
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    assert_server_is_expected(s3_server)
    uri = f"s3://{s3_env}/synth"
    write_synthetic(  # straight to SeaweedFS (s3_env's endpoint)
        uri, 80, SyntheticConfig(seed=7, max_size=64), WriterConfig(max_samples_per_shard=10)
    )
    cfg = ReaderConfig(seed=1, world_size=1, rank=0, num_workers=2, epochs=1, block_size=20)
    every = sorted(f"synthetic-7-{i:08d}" for i in range(80))
    head: list[str] = []
    with fault_proxy(s3_server.endpoint, rate=1.0, seed=8, after=4) as proxy:
        through(monkeypatch, proxy.endpoint)
        reader = StreamingReader([uri], cfg)
        fails_cleanly(lambda: head.extend(item["id"] for item in reader), uri + "/",
                      StorageError, ShardError)  # fmt: skip
        state = reader.state_dict()
    assert len(head) < len(every)
    through(monkeypatch, s3_server.endpoint)
    resumed = StreamingReader([uri], cfg)
    resumed.load_state_dict(state)
    tail = [item["id"] for item in resumed]
    assert sorted(head + tail) == every  # exactly once across the failure and resume


@pytest.mark.parametrize("after", [2, 14])
def test_caption_worker_under_100pct_faults_commits_nothing_partial(
    s3_env: str, s3_server: S3Server, after: int
) -> None:
    """A CaptionJob pod's worker whose store fails every request after the first
    `after` (2: while claiming; 14: with shards claimed, read and being written): the run
    ends in bounded time with shards counted failed (the pod exits 1 and its index is
    retried), no output manifest, and any output shard that exists is whole: exactly
    the ids of its input shard (a reset after the server took the create leaves the
    whole object, which the rerun finds committed)."""
    import io

    import pyarrow.parquet as pq

    from sailvl.caption.worker import CaptionWorker
    from tests.unit.test_caption_worker import FakeBackend, config, make_dataset

    assert_server_is_expected(s3_server)
    in_uri, out_uri = f"s3://{s3_env}/in", f"s3://{s3_env}/out"
    make_dataset(in_uri, 12, per_shard=3)  # 4 shards, straight to SeaweedFS
    snaps: list[dict[str, Any]] = []
    with fault_proxy(s3_server.endpoint, rate=1.0, seed=9, after=after, stall_s=3.0) as proxy:

        def store(uri: str) -> RetryingStore:
            inner = S3Store(uri, endpoint_url=proxy.endpoint, read_timeout=READ_TIMEOUT_S,
                            connect_timeout=READ_TIMEOUT_S)  # fmt: skip
            return RetryingStore(inner, RETRY)

        cfg = config(s3_env, shard_index=0, shard_count=1, shard_retries=1)
        cfg.input_uri, cfg.output_uri = in_uri, out_uri
        worker = CaptionWorker(cfg, FakeBackend(), store(in_uri), store(out_uri))
        t0 = time.monotonic()
        run = threading.Thread(target=lambda: snaps.append(worker.run()))
        run.start()
        run.join(BOUND_S)
        took = time.monotonic() - t0
        assert not run.is_alive(), "the caption worker hangs under 100 % faults"
    snap = snaps[0]
    print(f"caption worker at 100 % after {after}: {took:.1f} s, {snap}")
    assert snap["shards_failed"] >= 1 and "manifest_written" not in snap, snap
    got = upstream_objects(s3_server, s3_env)
    assert "out/manifest.json" not in got
    ids = lambda data: pq.read_table(io.BytesIO(data), columns=["id"]).column("id").to_pylist()  # noqa: E731
    for key in [k for k in got if k.startswith("out/") and k.endswith(".parquet")]:
        assert ids(got[key]) == ids(got["in/" + key[len("out/") :]]), key
