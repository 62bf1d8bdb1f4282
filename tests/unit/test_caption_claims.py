"""Dynamic shard assignment (sailvl.caption.claims) and first-commit-wins on a local store:
conditional create, claims, takeovers, standby, restart, and the index-built manifest."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sailvl.caption import shards as sh
from sailvl.caption.claims import Claimer
from sailvl.caption.worker import CaptionWorker
from sailvl.data.manifest import Manifest
from sailvl.storage import RetryConfig, RetryingStore, TransientStorageError, create_once
from sailvl.storage.local import LocalStore
from tests.unit.test_caption_worker import FakeBackend, config, make_dataset, output_rows


@pytest.mark.parametrize("backend", ["local", "pyarrow"])
def test_create_once_has_exactly_one_winner(tmp_path: Path, backend: str) -> None:
    """The local store and PyArrowStore (the libhdfs path, on pyarrow's local fs)."""
    if backend == "local":
        store: Any = LocalStore(str(tmp_path))
    else:
        from pyarrow import fs

        from sailvl.storage.hdfs import PyArrowStore

        store = PyArrowStore(fs.LocalFileSystem(), str(tmp_path), f"pa://{tmp_path}")
    with ThreadPoolExecutor(16) as pool:
        wins = list(pool.map(lambda i: create_once(store, "k/x", b"%d" % i), range(64)))
    assert wins.count(True) == 1
    assert store.read_bytes("k/x") == b"%d" % wins.index(True)
    assert not [p for p in (tmp_path / "k").iterdir() if p.name != "x"]  # no temp left


class LostAnswer:
    """A local store whose first create lands but answers with a transient error, as a
    connection reset after the server committed the PUT would."""

    def __init__(self, root: str) -> None:
        self.inner = LocalStore(root)
        self.uri = self.inner.uri
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        self.calls += 1
        created = self.inner.create_exclusive(key, data)
        if self.calls == 1:
            raise TransientStorageError("reset after the server committed")
        return created


def test_create_once_after_a_lost_answer_is_still_a_win(tmp_path: Path) -> None:
    raw = LostAnswer(str(tmp_path))
    store = RetryingStore(raw, RetryConfig(attempts=3, base_delay_s=0), sleep=lambda s: None)
    assert create_once(store, "c", b"mine") is True  # the retry sees its own bytes
    assert raw.calls == 2
    assert create_once(store, "c", b"other") is False


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def claimer(store: Any, keys: list[str], clock: Clock, **kw: Any) -> Claimer:
    done = kw.pop("done", set())
    return Claimer(store, keys, lambda: set(done), clock=clock, sleep=clock.sleep, **kw)


def test_claims_split_keys_exactly_once_across_racing_pods(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    keys = [f"s/{i:03d}" for i in range(120)]
    got: dict[int, list[str]] = {}

    def pod(k: int) -> None:
        c = Claimer(store, keys, lambda: set(), index=k, count=6, poll_s=0.01, max_takeovers=0)
        got[k] = []
        while (claim := c.next()) is not None:
            got[k].append(claim.key)

    threads = [threading.Thread(target=pod, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [key for keys_ in got.values() for key in keys_]
    assert sorted(every) == keys  # each shard claimed by exactly one pod
    assert got[3][0] == keys[60]  # pod k starts its walk at k * N / n


def test_expired_claim_is_taken_over_once(tmp_path: Path) -> None:
    store, clock = LocalStore(str(tmp_path)), Clock()
    keys = ["a", "b"]
    a = claimer(store, keys, clock, index=0, count=2, timeout_s=100)
    assert a.next().key == "a"  # type: ignore[union-attr]
    b = claimer(store, keys, clock, index=1, count=2, timeout_s=100)
    assert b.next().key == "b"  # type: ignore[union-attr]
    clock.t += 150  # both claims expire; b takes over a's, a takes over b's
    got = b.next()
    assert got is not None and (got.key, got.gen, got.takeover) == ("a", 1, True)
    c = claimer(store, keys, clock, index=2, count=3, timeout_s=100)
    got_c = c.next()  # "b" is expired at gen 0; "a" is at its one takeover
    assert got_c is not None and (got_c.key, got_c.gen) == ("b", 1)
    clock.t += 150
    assert claimer(store, keys, clock, index=3, count=4, timeout_s=100).next() is None
    assert sorted(store.list("_claims/")) == ["_claims/a.000", "_claims/a.001"] + [
        "_claims/b.000",
        "_claims/b.001",
    ]


def test_idle_pod_stands_by_then_takes_over_and_others_leave(tmp_path: Path) -> None:
    store, clock = LocalStore(str(tmp_path)), Clock()
    slow = claimer(store, ["x"], clock, index=0, count=3, timeout_s=60, poll_s=5)
    assert slow.next().key == "x"  # type: ignore[union-attr]
    clock.t += 10
    standby = claimer(store, ["x"], clock, index=1, count=3, timeout_s=60, poll_s=5)
    other = claimer(store, ["x"], clock, index=2, count=3, timeout_s=60, poll_s=5)
    got = standby.next()  # holds _standby/x.001, sleeps until the claim is 60 s old
    assert got is not None and got.gen == 1 and clock.t >= 1060
    assert standby.stats["waits"] >= 1
    assert other.next() is None  # no standby free, nothing to claim: it ends at once


def test_restarted_pod_takes_back_its_own_claims_at_once(tmp_path: Path) -> None:
    store, clock = LocalStore(str(tmp_path)), Clock()
    first = claimer(store, ["x", "y"], clock, index=0, count=1, timeout_s=3600)
    assert first.next().key == "x"  # type: ignore[union-attr]
    # the pod dies; the Job restarts index 0 with a new run id, long before the timeout
    again = claimer(store, ["x", "y"], clock, index=0, count=1, timeout_s=3600)
    assert again.next().key == "y"  # type: ignore[union-attr]
    got = again.next()
    assert got is not None and (got.key, got.gen, got.takeover) == ("x", 1, True)
    assert again.next() is None  # its own current claims are not waited on


class Gate(FakeBackend):
    """Blocks every generate call until `release` is set (a straggler)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(self, batch: list[Any]) -> list[str]:
        self.entered.set()
        assert self.release.wait(60)
        return super().generate(batch)


def test_straggler_is_taken_over_and_first_commit_wins(tmp_path: Path) -> None:
    ids = make_dataset(f"file://{tmp_path}/in", 8, per_shard=4)  # 2 shards
    opts = dict(shard_count=2, claim_timeout_s=0.5, claim_poll_s=0.05)
    out = LocalStore(str(tmp_path / "out"))
    slow_backend = Gate()
    slow = CaptionWorker(
        config(tmp_path, shard_index=0, **opts),
        slow_backend,
        LocalStore(str(tmp_path / "in")),
        out,
    )
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(slow.run()))
    t.start()
    assert slow_backend.entered.wait(30)
    fast = CaptionWorker(
        config(tmp_path, shard_index=1, **opts),
        FakeBackend(),
        LocalStore(str(tmp_path / "in")),
        out,
    )
    # Its free shard (if the straggler's prefetch has not claimed it too), then it
    # stands by and takes over what the straggler holds once the claims are 0.5 s old.
    snap = fast.run()
    assert fast.claimer is not None
    taken = fast.claimer.stats["taken_over"]
    assert snap["shards_done"] == 2 and taken >= 1 and snap["manifest_written"] is True
    slow_backend.release.set()
    t.join(60)
    assert not t.is_alive()
    assert (result["shards_superseded"], result["shards_done"]) == (taken, 0)
    rows = output_rows(f"file://{tmp_path}/out")
    assert sorted(r["id"] for r in rows) == ids  # every sample exactly once
    gens = [json.loads(out.read_bytes(k))["gen"] for k in out.list(sh.INDEX)]
    assert sorted(gens) == [0] * (2 - taken) + [1] * taken  # the taker's commits stand


class NoShardReads:
    """An output store that fails any read of an output shard (a `.parquet` key)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.uri, self.reads = inner, inner.uri, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_bytes(self, key: str) -> bytes:
        self.reads[key] += 1
        if key.endswith(".parquet"):
            raise AssertionError(f"manifest read output shard {key}")
        return bytes(self.inner.read_bytes(key))


@pytest.mark.parametrize("assignment", ["dynamic", "static"])
def test_manifest_is_built_from_index_objects_not_shards(tmp_path: Path, assignment: str) -> None:
    """Failed before index objects existed: 'manifest read output shard ...'."""
    make_dataset(f"file://{tmp_path}/in", 20, per_shard=4)  # 5 shards
    cfg = config(tmp_path, assignment=assignment)
    CaptionWorker(
        cfg, FakeBackend(), LocalStore(str(tmp_path / "in")), LocalStore(str(tmp_path / "out"))
    ).run()
    out = LocalStore(str(tmp_path / "out"))
    before = Manifest.from_json(out.read_bytes("manifest.json"))
    out.delete("manifest.json")
    keys = [s.path for s in before.shards]
    guarded = NoShardReads(out)
    assert sh.write_output_manifest(LocalStore(str(tmp_path / "in")), guarded, keys)
    after = Manifest.from_json(out.read_bytes("manifest.json"))
    assert after.shards == before.shards and sum(s.samples for s in after.shards) == 20
    for info in after.shards:  # the index facts are the file's own
        facts = sh.shard_facts(out.read_bytes(info.path))
        assert (facts["samples"], facts["bytes"], facts["sha256"]) == (
            info.samples,
            info.bytes,
            info.sha256,
        )


def test_output_without_index_is_indexed_from_that_shard_only(tmp_path: Path) -> None:
    make_dataset(f"file://{tmp_path}/in", 12, per_shard=4)  # 3 shards
    cfg = config(tmp_path)
    CaptionWorker(
        cfg, FakeBackend(), LocalStore(str(tmp_path / "in")), LocalStore(str(tmp_path / "out"))
    ).run()
    out = LocalStore(str(tmp_path / "out"))
    keys = [s.path for s in Manifest.from_json(out.read_bytes("manifest.json")).shards]
    out.delete(sh.index_key(keys[1]))  # e.g. written by an older version
    counting = NoShardReads(out)
    counting.read_bytes = lambda key: (counting.reads.update([key]), out.read_bytes(key))[1]  # type: ignore[method-assign]
    assert sh.write_output_manifest(LocalStore(str(tmp_path / "in")), counting, keys)
    assert [k for k in counting.reads if k.endswith(".parquet")] == [keys[1]]
    assert out.exists(sh.index_key(keys[1]))
