"""A CaptionJob's workers over 20 shards on SeaweedFS under 5 % injected faults (issue 17
section 3): two workers (threads, dynamic assignment) talk to the store only through
`tests.fixtures.faultproxy` (500, 503 SlowDown, stalls past the read timeout, resets
after the server acted, truncated bodies). Checked on SeaweedFS directly, not through the
proxy: every input id exactly once in the output, the output dataset validates (sizes,
digests, rows), each index object describes its committed shard, faults were injected
and retried. A reset after a conditional PUT landed is the case `create_once` reads back.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pyarrow.parquet as pq

from sailvl.caption.worker import CaptionWorker
from sailvl.data.dataset import Dataset
from sailvl.storage import RetryingStore
from sailvl.storage.s3 import S3Store
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.s3server import S3Server, assert_server_is_expected
from tests.integration.test_s3_faults import READ_TIMEOUT_S, RETRY, retries_total, sha
from tests.unit.test_caption_worker import FakeBackend, config, make_dataset


def test_caption_job_20_shards_under_5pct_faults(s3_env: str, s3_server: S3Server) -> None:
    assert_server_is_expected(s3_server)
    in_uri, out_uri = f"s3://{s3_env}/in", f"s3://{s3_env}/out"
    ids = make_dataset(in_uri, 60, per_shard=3)  # 20 shards, written straight to SeaweedFS
    before = retries_total()
    snaps: list[dict[str, Any]] = []
    with fault_proxy(s3_server.endpoint, rate=0.05, seed=5, stall_s=3.0) as proxy:

        def store(uri: str) -> RetryingStore:
            inner = S3Store(uri, endpoint_url=proxy.endpoint, read_timeout=READ_TIMEOUT_S,
                            connect_timeout=READ_TIMEOUT_S)  # fmt: skip
            return RetryingStore(inner, RETRY)

        def pod(k: int) -> None:
            cfg = config(s3_env, shard_index=k, shard_count=2, shard_retries=3)
            cfg.input_uri, cfg.output_uri = in_uri, out_uri
            snaps.append(CaptionWorker(cfg, FakeBackend(), store(in_uri), store(out_uri)).run())

        threads = [threading.Thread(target=pod, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        injected = sum(proxy.injected.values())
    assert all(s["shards_failed"] == 0 for s in snaps), snaps
    assert sum(s["shards_done"] for s in snaps) == 20
    assert injected > 0 and retries_total() - before >= 1
    direct = S3Store(out_uri, endpoint_url=s3_server.endpoint)
    dataset = Dataset.open(out_uri)  # the s3_env endpoint: SeaweedFS itself
    dataset.validate(deep=True)
    rows = []
    for info in dataset.manifest.shards:
        data = direct.read_bytes(info.path)
        facts = json.loads(direct.read_bytes(f"_index/{info.path}.json"))
        assert (facts["bytes"], facts["sha256"]) == (len(data), sha(data))
        rows += pq.read_table(io.BytesIO(data)).column("id").to_pylist()
    assert sorted(rows) == ids  # every sample exactly once
    print(
        f"faults injected {dict(proxy.injected)}; shards per worker {[s['shards_done'] for s in snaps]}"
    )
