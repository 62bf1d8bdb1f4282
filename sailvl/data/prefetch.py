"""The reader's I/O helpers: shard read-ahead with an LRU, and a prefetch thread.

`ShardLoader` fetches and decodes shards in a thread pool as soon as the reader has
planned the positions that need them, so S3 latency overlaps decoding; finished
shards stay in an LRU so a shuffle block spanning several shards reads each once.
`prefetch` runs an iterator in a daemon thread a bounded number of items ahead and
re-raises its error at the consumer, in order: a failing shard is a clear error at the
training loop, never a hang.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sailvl.data.dataset import ShardRows
from sailvl.data.manifest import ShardError

if TYPE_CHECKING:
    from sailvl.data.reader import StreamingReader

log = logging.getLogger(__name__)


class ShardLoader:
    """Fetches and decodes shards in threads, ahead of use; keeps an LRU per source."""

    def __init__(self, reader: StreamingReader, threads: int) -> None:
        self.reader = reader
        self.pool = ThreadPoolExecutor(max(1, threads))
        self.cache: OrderedDict[tuple[int, int], Future[ShardRows | str]] = OrderedDict()
        self.limit = reader.config.cache_shards * len(reader.sources)
        self.lock = threading.Lock()

    def _load(self, s: int, shard: int) -> ShardRows | str:
        ds = self.reader.sources[s].dataset
        assert ds is not None
        try:
            return ds.read_shard(shard)
        except ShardError as exc:
            if self.reader.config.on_shard_error == "raise":
                raise
            log.error("skipping %s", exc)
            return f"shard_error:{ds.shards[shard].path}"

    def prefetch(self, wants: list[tuple[int, int, int]]) -> None:
        for s, shard, _ in wants:
            self._future(s, shard)

    def _future(self, s: int, shard: int) -> Future[ShardRows | str]:
        with self.lock:
            key = (s, shard)
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
            fut = self.pool.submit(self._load, s, shard)
            self.cache[key] = fut
            while len(self.cache) > self.limit:
                self.cache.popitem(last=False)
            return fut

    def get(self, s: int, shard: int) -> ShardRows | str:
        return self._future(s, shard).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def prefetch(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Run `items` in a daemon thread, `depth` ahead; re-raise its error in order."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for it in items:
                while not stop.is_set():
                    try:
                        q.put(("item", it), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(("error", exc))

    thread = threading.Thread(target=run, daemon=True, name="sailvl-prefetch")
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
