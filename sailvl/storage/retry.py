"""Retries with exponential backoff and full jitter, as a wrapper around any `Store`.

Only `TransientStorageError` is retried (backends translate timeouts, throttling and
5xx into it); `NotFoundError` and other `StorageError`s fail at once, so a missing key
never costs a backoff. `open` is retried up to the moment the stream is handed out;
a stream that breaks later is the reader's to reopen (it reads whole shards through
`read_bytes`, which is retried end to end).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from sailvl.storage.base import Store, TransientStorageError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(kw_only=True, frozen=True)
class RetryConfig:
    """How transient storage errors are retried."""

    # Total tries per operation, the first included (1 = no retry).
    attempts: int = 5
    # Backoff before retry n is uniform in [0, min(max_delay_s, base_delay_s * 2**n)].
    base_delay_s: float = 0.2
    # Upper bound of one backoff.
    max_delay_s: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts: must be >= 1, got {self.attempts}")
        if self.base_delay_s < 0:
            raise ValueError(f"base_delay_s: must be >= 0, got {self.base_delay_s}")
        if self.max_delay_s < self.base_delay_s:
            raise ValueError(f"max_delay_s: must be >= base_delay_s, got {self.max_delay_s}")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Backoff before retry number `retry` (0-based), full jitter."""
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * (2**retry)))


def call_with_retries(
    fn: Callable[[], T],
    config: RetryConfig,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `fn`, retrying `TransientStorageError` per `config`; re-raise the last one."""
    rng = rng or random.Random()
    for attempt in range(config.attempts):
        try:
            return fn()
        except TransientStorageError as exc:
            if attempt + 1 >= config.attempts:
                raise
            delay = config.delay(attempt, rng)
            log.warning("storage %s: %s; retry %d in %.2fs", what, exc, attempt + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class RetryingStore:
    """A `Store` that retries the wrapped store's transient failures."""

    def __init__(
        self,
        inner: Store,
        config: RetryConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.config = config or RetryConfig()
        self.uri = inner.uri
        self._sleep = sleep
        self._rng = random.Random()

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retries(
            fn, self.config, f"{what} {self.uri}", sleep=self._sleep, rng=self._rng
        )

    def read_bytes(self, key: str) -> bytes:
        return self._retry(f"read {key}", lambda: self.inner.read_bytes(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self._retry(f"write {key}", lambda: self.inner.write_bytes(key, data))

    def exists(self, key: str) -> bool:
        return self._retry(f"exists {key}", lambda: self.inner.exists(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        # Materialised inside the retry so a listing that fails half-way restarts whole.
        keys = self._retry(f"list {prefix}", lambda: list(self.inner.list(prefix)))
        return iter(keys)

    def delete(self, key: str) -> None:
        self._retry(f"delete {key}", lambda: self.inner.delete(key))

    def open(self, key: str) -> BinaryIO:
        return self._retry(f"open {key}", lambda: self.inner.open(key))
