"""Streaming reader: ranks x workers split, weighted mixing, seeded shuffle, prefetch,
and exact mid-epoch resume.

The stream of one rank is a pure function of `(seed, position)` (see
`sailvl.data.shuffle`). A rank has `num_workers` logical consumers (consumer id
`rank * num_workers + worker`); rank position p belongs to logical worker `p % W` at its
local position `p // W`, so the rank stream is the round-robin of its workers, which is
exactly the order a torch DataLoader (`batch_size=None`, in order) yields them in.
Local position k of a consumer draws a source (weighted, seeded), and the source's
`count`-th sample for that consumer is at `epoch = count // L`, `offset = count % L` of
its contiguous slice (length L) of that epoch's shuffled order.

State is one integer: the next rank position. On resume, physical worker w takes
logical worker `(w + p) % W`, so the DataLoader's first pull (worker 0) is position p.
Every position yields exactly one item: a sample, or (in DataLoader workers) a skip
marker `{"__skip__": reason, "__pos__": p}` for a bad row, failed transform or
exhausted source, so the round-robin stays aligned; `drop_skips` filters them in the
main process. Each sample carries `"__pos__"`; `state_after(item)` is the state to
save once that item is consumed.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sailvl.data.dataset import Dataset
from sailvl.data.prefetch import ShardLoader, prefetch
from sailvl.data.shuffle import (
    SHUFFLES,
    consumer_range,
    epoch_order,
    locate,
    mix_choices,
    mix_counts,
)

log = logging.getLogger(__name__)
STATE_VERSION = 1
_CHUNK = 256  # positions planned (and shards read ahead) at a time


@dataclass(kw_only=True)
class ReaderConfig:
    """How a `StreamingReader` orders, splits and prefetches."""

    # Base seed of shuffles and mixing; the stream is a pure function of it.
    seed: int = 0
    # Shuffle algorithm by name (sailvl.data.shuffle.SHUFFLES): none | shards | block.
    shuffle: str = "block"
    # Samples per shuffle block (bigger mixes more, keeps more shards in memory).
    block_size: int = 4096
    # This rank and the number of ranks.
    rank: int = 0
    world_size: int = 1
    # Logical dataloader workers per rank (= DataLoader num_workers, or 1 without one).
    num_workers: int = 1
    # Stop after this many epochs of every source (None: stream forever).
    epochs: int | None = None
    # Items buffered by the prefetch thread (0: no thread).
    prefetch: int = 64
    # Threads decoding shards and running `transform` (0: in the prefetch thread). With
    # threads > 0 the transform must be thread-safe: HF fast tokenizers are not (they
    # raise "Already borrowed"), so keep one per thread (threading.local).
    threads: int = 2
    # Decoded shards kept in memory per source (must cover a block's shards).
    cache_shards: int = 8
    # A shard that cannot be read: "raise" (clear error naming it) or "skip" (counted).
    on_shard_error: str = "raise"
    # Verify each shard's SHA-256 against the manifest.
    verify_checksums: bool = True

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed: must be >= 0")
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"shuffle: must be one of {sorted(SHUFFLES)}")
        if self.block_size < 1:
            raise ValueError("block_size: must be >= 1")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError("rank: must be in [0, world_size)")
        if self.num_workers < 1:
            raise ValueError("num_workers: must be >= 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("epochs: must be >= 1 or None")
        if self.prefetch < 0 or self.threads < 0 or self.cache_shards < 1:
            raise ValueError("prefetch/threads/cache_shards: out of range")
        if self.on_shard_error not in ("raise", "skip"):
            raise ValueError("on_shard_error: must be 'raise' or 'skip'")


@dataclass
class Source:
    """One dataset in the mix, with its sampling weight."""

    uri: str
    weight: float = 1.0
    name: str = ""
    dataset: Dataset | None = field(default=None, repr=False)


def drop_skips(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Filter the skip markers out of a stream (main-process side of a DataLoader)."""
    return (it for it in items if "__skip__" not in it)


def state_after(item: dict[str, Any]) -> dict[str, int]:
    """The reader state to save once `item` has been consumed."""
    return {"version": STATE_VERSION, "position": int(item["__pos__"]) + 1}


def _worker_info() -> tuple[int, int] | None:
    torch = sys.modules.get("torch")  # only if the job already imported torch
    info = torch.utils.data.get_worker_info() if torch is not None else None
    return None if info is None else (int(info.id), int(info.num_workers))


class StreamingReader:
    """Iterate samples (or `transform(sample)` results) of weighted sources."""

    def __init__(
        self,
        sources: Sequence[Source | str],
        config: ReaderConfig | None = None,
        *,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.config = cfg = config or ReaderConfig()
        self.sources = [Source(s) if isinstance(s, str) else s for s in sources]
        if not self.sources or any(s.weight <= 0 for s in self.sources):
            raise ValueError("sources: need at least one, each with weight > 0")
        for s in self.sources:
            s.dataset = s.dataset or Dataset.open(s.uri, verify_checksums=cfg.verify_checksums)
            s.name = s.name or s.uri
        self.transform = transform
        self.weights = [s.weight for s in self.sources]
        self.num_consumers = cfg.world_size * cfg.num_workers
        self.sizes = [[sh.samples for sh in s.dataset.shards] for s in self.sources]  # type: ignore[union-attr]
        self.lengths: list[list[int]] = []  # [source][logical worker] slice length
        for s, sizes in zip(self.sources, self.sizes, strict=True):
            n = sum(sizes)
            if n < self.num_consumers:
                raise ValueError(
                    f"sources: {s.name} has {n} samples < {self.num_consumers} consumers"
                )
            ranges = [
                consumer_range(n, self._consumer(w), self.num_consumers)
                for w in range(cfg.num_workers)
            ]
            self.lengths.append([hi - lo for lo, hi in ranges])
        self.position = 0
        self.stats: Counter[str] = Counter()

    # --- state --------------------------------------------------------------------
    def _consumer(self, worker: int) -> int:
        return self.config.rank * self.config.num_workers + worker

    def state_dict(self) -> dict[str, Any]:
        """The next rank position plus what must match on load."""
        cfg = self.config
        return {
            "version": STATE_VERSION,
            "position": self.position,
            "seed": cfg.seed,
            "world_size": cfg.world_size,
            "num_workers": cfg.num_workers,
            "sources": [[s.name, sum(z)] for s, z in zip(self.sources, self.sizes, strict=True)],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"state: version {state.get('version')} != {STATE_VERSION}")
        mine = self.state_dict()
        for key in ("seed", "world_size", "num_workers", "sources"):
            if key in state and state[key] != mine[key]:
                raise ValueError(
                    f"state: {key} {state[key]!r} differs from this reader's {mine[key]!r}"
                )
        self.position = int(state["position"])

    # --- planning (pure) ------------------------------------------------------------
    def _plan(
        self, worker: int, k_lo: int, k_hi: int, counts: np.ndarray
    ) -> list[tuple[int, int, int] | None]:
        """(source, shard, row) for local positions [k_lo, k_hi); None = exhausted.
        `counts` (per-source draws before k_lo) is advanced in place."""
        cfg, consumer = self.config, self._consumer(worker)
        choice = mix_choices(self.weights, seed=cfg.seed, consumer=consumer, start=k_lo, stop=k_hi)
        out: list[tuple[int, int, int] | None] = [None] * len(choice)
        for s, sizes in enumerate(self.sizes):
            where = np.nonzero(choice == s)[0]
            length, c0 = self.lengths[s][worker], int(counts[s])
            cap = len(where) if cfg.epochs is None else max(0, cfg.epochs * length - c0)
            where = where[:cap]
            if not len(where):
                continue
            # This source's draws are consecutive counts c0.. : map them epoch by epoch.
            lo = consumer_range(sum(sizes), consumer, self.num_consumers)[0]
            ids = []
            c, c_end = c0, c0 + len(where)
            while c < c_end:
                epoch, off = divmod(c, length)
                take = min(c_end - c, length - off)
                ids.append(
                    epoch_order(
                        sizes,
                        seed=cfg.seed + 7919 * s,
                        epoch=epoch,
                        algo=cfg.shuffle,
                        block_size=cfg.block_size,
                        start=lo + off,
                        stop=lo + off + take,
                    )
                )
                c += take
            shard, row = locate(sizes, np.concatenate(ids))
            for i, sh, r in zip(where.tolist(), shard.tolist(), row.tolist(), strict=True):
                out[i] = (s, sh, r)
            counts[s] = c_end
        return out

    def _exhausted(self, worker: int, counts: np.ndarray) -> bool:
        epochs = self.config.epochs
        return epochs is not None and all(
            counts[s] >= epochs * self.lengths[s][worker] for s in range(len(self.sources))
        )

    # --- iteration ------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        cfg = self.config
        info = _worker_info()
        if info is not None and info[1] != cfg.num_workers:
            raise ValueError(
                f"num_workers: config says {cfg.num_workers}, DataLoader has {info[1]}"
            )
        W, start = cfg.num_workers, self.position
        # In a DataLoader worker: one logical worker, rotated so worker 0 serves `start`.
        mine = [(info[0] + start) % W] if info is not None else list(range(W))
        items = self._items(start, mine, emit_skips=info is not None)
        if cfg.prefetch:
            items = prefetch(items, cfg.prefetch)
        for item in items:
            if info is None:
                self.position = item["__pos__"] + 1
            yield item

    def _items(self, start: int, mine: list[int], *, emit_skips: bool) -> Iterator[Any]:
        cfg, W = self.config, self.config.num_workers
        counts = {
            w: mix_counts(
                self.weights,
                seed=cfg.seed,
                consumer=self._consumer(w),
                position=_local(start, w, W),
            )
            for w in mine
        }
        loader = ShardLoader(self, cfg.threads)
        pool = ThreadPoolExecutor(cfg.threads) if cfg.threads else None
        try:
            p = start
            while True:
                live = [w for w in mine if not self._exhausted(w, counts[w])]
                if not live:
                    return
                chunk_positions = [q for q in range(p, p + _CHUNK * W) if q % W in mine]
                plans: dict[int, Any] = {}
                for w in mine:
                    ks = [q // W for q in chunk_positions if q % W == w]
                    if ks:
                        plans[w] = dict(
                            zip(ks, self._plan(w, ks[0], ks[-1] + 1, counts[w]), strict=True)
                        )
                steps = [(q, plans[q % W][q // W]) for q in chunk_positions]
                loader.prefetch([t for _, t in steps if t is not None])
                fn = lambda qt: self._produce(loader, *qt)  # noqa: E731
                for item in pool.map(fn, steps) if pool else map(fn, steps):
                    if "__skip__" in item and item["__skip__"] != "exhausted":
                        self.stats[item["__skip__"]] += 1
                    if emit_skips or "__skip__" not in item:
                        yield item
                p += _CHUNK * W
        finally:
            loader.close()
            if pool:
                pool.shutdown(wait=False, cancel_futures=True)

    def _produce(
        self, loader: ShardLoader, q: int, where: tuple[int, int, int] | None
    ) -> dict[str, Any]:
        if where is None:
            return {"__skip__": "exhausted", "__pos__": q}
        s, shard, row = where
        rows = loader.get(s, shard)
        if isinstance(rows, str):
            return {"__skip__": rows, "__pos__": q}
        sample = rows.rows[row] if row < len(rows.rows) else None
        if sample is None:
            return {"__skip__": f"bad_row:{rows.shard}", "__pos__": q}
        item: Any = dict(sample)
        if self.transform is not None:
            try:
                item = self.transform(item)
            except Exception as exc:  # corrupt image bytes etc.: counted, never fatal
                log.warning("transform failed on %s: %s", sample["id"], exc)
                return {"__skip__": f"transform:{type(exc).__name__}", "__pos__": q}
        if not isinstance(item, dict):
            raise TypeError(f"transform: must return a dict, got {type(item).__name__}")
        item["__pos__"] = q
        item.setdefault("__source__", self.sources[s].name)
        return item


def _local(position: int, worker: int, W: int) -> int:
    """Positions of logical `worker` among rank positions [0, position)."""
    return (position - worker + W - 1) // W if position > worker else 0
