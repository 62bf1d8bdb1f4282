"""Retries with exponential backoff and full jitter, as a wrapper around any `Store`.

Only `TransientStorageError` is retried (backends translate timeouts, throttling and
5xx into it); `NotFoundError` and other `StorageError`s fail at once, so a missing key
never costs a backoff. `open` is retried, and so is each read of the stream it hands
out: a stream that breaks mid-body (reset, short body) is reopened and the bytes already
delivered are skipped, so the caller sees one whole object or, once the attempts run
out, a `TransientStorageError`. A seekable stream (a local file) is handed out as it is.

Every retry is counted in `sailvl_storage_retries_total{op, reason}` (the metric
catalogue's storage family, in the process-wide Prometheus registry, so whatever
/metrics server the job runs exports it). `op` is the store method; `reason` is the
failure's `reason` attribute when the backend set one (the S3 backend tells `throttled`,
`server_error`, `timeout`, `connection` and `truncated` apart), else `other`. Without
prometheus_client installed nothing is counted. When the attempts run out, the error
raised is a `TransientStorageError` that names the object's full URI and the number of
attempts, chained to the last failure.
"""

from __future__ import annotations

import io
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from sailvl.storage.base import StorageError, Store, TransientStorageError, join

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


_METRICS: list[Any] = []  # [Metrics | None], built on the first retry


def count_retry(op: str, exc: BaseException) -> None:
    """Add one to `sailvl_storage_retries_total{op, reason}` (no-op without prometheus)."""
    if not _METRICS:
        try:
            import prometheus_client  # noqa: F401

            from sailvl.runtime.metrics import Metrics, family

            _METRICS.append(Metrics(family("sailvl_storage_")))
        except ImportError:
            _METRICS.append(None)
    if _METRICS[0] is not None:
        reason = str(getattr(exc, "reason", "") or "other")
        _METRICS[0].labels("sailvl_storage_retries_total", op=op, reason=reason).inc()


def call_with_retries(
    fn: Callable[[], T],
    config: RetryConfig,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    op: str = "other",
) -> T:
    """Run `fn`, retrying `TransientStorageError` per `config`.

    `what` names the object in logs and in the final error; `op` labels the retry metric.
    When the last attempt fails, raises a `TransientStorageError` naming `what` and the
    attempt count, chained to that failure."""
    rng = rng or random.Random()
    for attempt in range(config.attempts):
        try:
            return fn()
        except TransientStorageError as exc:
            if attempt + 1 >= config.attempts:
                raise TransientStorageError(
                    f"storage {what}: gave up after {config.attempts} attempts: {exc}"
                ) from exc
            count_retry(op, exc)
            delay = config.delay(attempt, rng)
            log.warning("storage %s: %s; retry %d in %.2fs", what, exc, attempt + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class _ResumingStream(io.RawIOBase):
    """The stream `RetryingStore.open` hands out: each `readinto` is retried; a retry
    reopens the object through the inner store and skips the `pos` bytes already read."""

    def __init__(self, store: RetryingStore, key: str, first: BinaryIO) -> None:
        self._store, self._key, self._f, self._pos = store, key, first, 0

    def readable(self) -> bool:
        return True

    def _attempt(self, buf: Any) -> int:
        if self._f is None:
            f = self._store.inner.open(self._key)
            left = self._pos
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    f.close()
                    raise TransientStorageError(f"{self._key}: shorter than {self._pos} bytes")
                left -= len(chunk)
            self._f = f
        try:
            return self._f.readinto(buf)  # type: ignore[attr-defined,no-any-return]
        except TransientStorageError:
            self._f.close()
            self._f = None
            raise

    def readinto(self, buf: Any) -> int:
        n = self._store._retry("open", self._key, lambda: self._attempt(buf))
        self._pos += n
        return n

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        super().close()


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

    def _retry(self, op: str, key: str, fn: Callable[[], T]) -> T:
        what = f"{op} {join(self.uri, key)}"  # the object's full URI, e.g. s3://b/p/k
        return call_with_retries(fn, self.config, what, sleep=self._sleep, rng=self._rng, op=op)

    def read_bytes(self, key: str) -> bytes:
        return self._retry("read", key, lambda: self.inner.read_bytes(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self._retry("write", key, lambda: self.inner.write_bytes(key, data))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """The inner store's conditional create, retried. A retry after a lost answer
        may see the key this call itself created and return False: `create_once`
        tells that apart by reading the key back."""
        create = getattr(self.inner, "create_exclusive", None)
        if create is None:
            raise StorageError(f"{self.uri}: this store cannot create a key only-if-absent")
        return self._retry("create", key, lambda: bool(create(key, data)))

    def exists(self, key: str) -> bool:
        return self._retry("exists", key, lambda: self.inner.exists(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        # Materialised inside the retry so a listing that fails half-way restarts whole.
        keys = self._retry("list", prefix, lambda: list(self.inner.list(prefix)))
        return iter(keys)

    def delete(self, key: str) -> None:
        self._retry("delete", key, lambda: self.inner.delete(key))

    def open(self, key: str) -> BinaryIO:
        first = self._retry("open", key, lambda: self.inner.open(key))
        if first.seekable():  # a local file: nothing to resume, and callers may seek
            return first
        return io.BufferedReader(_ResumingStream(self, key, first), 1 << 20)  # type: ignore[return-value]
