"""Streaming reader: permutations, exactly-once over ranks x workers x epochs, mixing,
exact resume (in process and through DataLoader-style workers), bad input."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sailvl.data import reader as reader_mod
from sailvl.data.dataset import DatasetWriter, WriterConfig
from sailvl.data.reader import ReaderConfig, Source, StreamingReader, drop_skips, state_after
from sailvl.data.shuffle import SHUFFLES, consumer_range, epoch_order, mix_choices, mix_counts


def make_ds(
    path: Path, n: int, per_shard: int, prefix: str = "s", bad: set[int] = frozenset()
) -> str:
    with DatasetWriter(str(path), WriterConfig(max_samples_per_shard=per_shard)) as w:
        for i in range(n):
            img = b"not an image" if i in bad else b"img"
            w.write({"id": f"{prefix}{i}", "images": [img], "caption": str(i)})
    return str(path)


@pytest.fixture(scope="module")
def ds_a(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_ds(tmp_path_factory.mktemp("a"), 103, 10, "a")


@pytest.fixture(scope="module")
def ds_b(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_ds(tmp_path_factory.mktemp("b"), 41, 7, "b")


@pytest.mark.parametrize("algo", sorted(SHUFFLES))
@pytest.mark.parametrize("sizes", [[10], [3, 7, 1, 9, 4], [1] * 13, [50, 2, 33]])
@pytest.mark.parametrize("block", [1, 4, 16, 1000])
def test_epoch_order_is_a_permutation_and_sliceable(
    algo: str, sizes: list[int], block: int
) -> None:
    n = sum(sizes)
    full = epoch_order(sizes, seed=5, epoch=1, algo=algo, block_size=block)
    assert sorted(full.tolist()) == list(range(n))
    for lo, hi in [(0, 1), (2, n // 2), (n // 3, n)]:
        part = epoch_order(sizes, seed=5, epoch=1, algo=algo, block_size=block, start=lo, stop=hi)
        assert part.tolist() == full[lo:hi].tolist()
    if algo != "none" and n >= 20 and block > 1:
        other = epoch_order(sizes, seed=5, epoch=2, algo=algo, block_size=block)
        assert other.tolist() != full.tolist()


def test_consumer_ranges_tile_the_epoch() -> None:
    for n, c in itertools.product([7, 100, 101], [1, 2, 3, 7]):
        ranges = [consumer_range(n, i, c) for i in range(c)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        lens = [hi - lo for lo, hi in ranges]
        assert max(lens) - min(lens) <= 1


def test_mixing_follows_weights_and_counts_are_consistent() -> None:
    w = [3.0, 1.0]
    ch = mix_choices(w, seed=1, consumer=0, start=0, stop=20000)
    assert abs((ch == 0).mean() - 0.75) < 0.02
    assert (
        mix_counts(w, seed=1, consumer=0, position=12345).tolist()
        == np.bincount(ch[:12345]).tolist()
    )
    part = mix_choices(w, seed=1, consumer=0, start=5000, stop=9000)
    assert part.tolist() == ch[5000:9000].tolist()
    assert mix_choices(w, seed=2, consumer=0, start=0, stop=100).tolist() != ch[:100].tolist()


def rank_stream(uris: list[str], **cfg: Any) -> list[dict[str, Any]]:
    return list(StreamingReader(uris, ReaderConfig(**cfg)))


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("algo", ["block", "none"])
def test_every_sample_once_per_epoch_across_ranks_and_workers(
    ds_a: str, world: int, workers: int, algo: str
) -> None:
    epochs = 3
    per_epoch: list[Counter[str]] = [Counter() for _ in range(epochs)]
    for rank in range(world):
        cfg = dict(
            world_size=world,
            rank=rank,
            num_workers=workers,
            epochs=epochs,
            shuffle=algo,
            block_size=8,
            prefetch=0 if rank else 16,
        )
        items = rank_stream([ds_a], **cfg)
        for it in items:
            p = it["__pos__"]
            w, k = p % workers, p // workers
            consumer = rank * workers + w
            lo, hi = consumer_range(103, consumer, world * workers)
            per_epoch[k // (hi - lo)][it["id"]] += 1
    for e in range(epochs):
        assert per_epoch[e] == Counter({f"a{i}": 1 for i in range(103)}), f"epoch {e}"


def test_epochs_are_reshuffled_and_seed_matters(ds_a: str) -> None:
    e = [it["id"] for it in rank_stream([ds_a], epochs=2, block_size=16)]
    assert e[:103] != e[103:] and sorted(e[:103]) == sorted(e[103:])
    other = [it["id"] for it in rank_stream([ds_a], epochs=1, block_size=16, seed=9)]
    assert other != e[:103]
    assert [it["id"] for it in rank_stream([ds_a], epochs=2, block_size=16)] == e


def take(reader: StreamingReader, n: int) -> list[str]:
    return [it["id"] for it in itertools.islice(iter(reader), n)]


@pytest.mark.parametrize("cut", [0, 1, 37, 103, 150, 299])
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("prefetch", [0, 8])
def test_resume_in_process_gives_the_identical_continuation(
    ds_a: str, ds_b: str, cut: int, workers: int, prefetch: int
) -> None:
    srcs = [Source(ds_a, 2.0), Source(ds_b, 1.0)]
    cfg = ReaderConfig(
        seed=4, world_size=2, rank=1, num_workers=workers, block_size=8, prefetch=prefetch
    )
    want = take(StreamingReader(srcs, cfg), 300)
    first = StreamingReader(srcs, cfg)
    head = take(first, cut)
    state = first.state_dict()
    second = StreamingReader([Source(ds_a, 2.0), Source(ds_b, 1.0)], cfg)
    second.load_state_dict(state)
    assert head + take(second, 300 - cut) == want
    # Both sources appear, about 2:1, and ds_b's 20-sample share wraps to a new epoch.
    n_b = sum(1 for i in want if i.startswith("b"))
    assert 60 < n_b < 140


def test_state_mismatch_is_refused(ds_a: str, ds_b: str) -> None:
    state = StreamingReader([ds_a], ReaderConfig(num_workers=2)).state_dict()
    with pytest.raises(ValueError, match="num_workers"):
        StreamingReader([ds_a], ReaderConfig(num_workers=3)).load_state_dict(state)
    with pytest.raises(ValueError, match="sources"):
        StreamingReader([ds_b], ReaderConfig(num_workers=2)).load_state_dict(state)


def simulate_dataloader(
    srcs: list[str], cfg: ReaderConfig, state: dict[str, Any] | None, n: int
) -> list[dict[str, Any]]:
    """What torch's DataLoader(batch_size=None, num_workers=W) does: one reader copy per
    worker (each sees its worker id), pulled round-robin from worker 0."""
    W = cfg.num_workers
    iters = []
    for w in range(W):
        r = StreamingReader(srcs, cfg, transform=decode)
        if state:
            r.load_state_dict(state)
        reader_mod._worker_info = lambda w=w: (w, W)  # type: ignore[assignment]
        iters.append(iter(r))
        next_item = next(iters[-1], None)  # start the generator while the patch holds
        iters[-1] = itertools.chain([next_item] if next_item else [], iters[-1])
    out = []
    for w in itertools.cycle(range(W)):
        item = next(iters[w], None)
        if item is None or len(out) >= n:
            break
        out.append(item)
    return out


def test_resume_through_dataloader_workers(
    ds_a: str, bad_ds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_mod, "_worker_info", reader_mod._worker_info)
    srcs = [ds_a, bad_ds]
    cfg = ReaderConfig(seed=2, num_workers=3, block_size=8, prefetch=0)
    full = simulate_dataloader(srcs, cfg, None, 200)
    assert [it["__pos__"] for it in full] == list(range(200))  # one item per position
    want = [it["id"] for it in drop_skips(full)]
    assert len(want) < 200  # bad rows and failed decodes came through as markers
    for cut in (1, 50, 121):
        consumed = list(drop_skips(full[:cut]))
        state = state_after(consumed[-1])
        resumed = simulate_dataloader(srcs, cfg, state, 200 - state["position"])
        got = [it["id"] for it in consumed] + [it["id"] for it in drop_skips(resumed)]
        assert got == want


@pytest.fixture(scope="module")
def bad_ds(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_ds(tmp_path_factory.mktemp("bad"), 30, 10, "x", bad={3, 11, 12})


def decode(sample: dict[str, Any]) -> dict[str, Any]:
    if sample["images"][0] != b"img":
        from PIL import Image

        Image.open(io.BytesIO(sample["images"][0]))  # raises UnidentifiedImageError
    return sample


def test_transform_failures_are_skipped_and_counted(bad_ds: str) -> None:
    r = StreamingReader([bad_ds], ReaderConfig(epochs=2), transform=decode)
    ids = [it["id"] for it in r]
    assert len(ids) == 2 * 27 and not {"x3", "x11", "x12"} & set(ids)
    assert r.stats == Counter({"transform:UnidentifiedImageError": 6})


def test_shard_error_policy(tmp_path: Path) -> None:
    uri = make_ds(tmp_path, 30, 10, "y")
    (tmp_path / "part-00001.parquet").write_bytes(b"gone")
    with pytest.raises(Exception, match="part-00001.parquet"):
        list(StreamingReader([uri], ReaderConfig(epochs=1, prefetch=4)))
    r = StreamingReader([uri], ReaderConfig(epochs=1, on_shard_error="skip"))
    assert len(list(r)) == 20
    assert r.stats == Counter({"shard_error:part-00001.parquet": 10})


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"shuffle": "x"}, "shuffle"),
        ({"epochs": 0}, "epochs"),
        ({"on_shard_error": "ignore"}, "on_shard_error"),
        ({"num_workers": 0}, "num_workers"),
    ],
)
def test_config_validation(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReaderConfig(**kw)


def test_too_few_samples_for_consumers(tmp_path: Path) -> None:
    uri = make_ds(tmp_path, 3, 10)
    with pytest.raises(ValueError, match="3 samples < 4 consumers"):
        StreamingReader([uri], ReaderConfig(world_size=2, num_workers=2))
