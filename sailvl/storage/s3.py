"""`s3://bucket/prefix` backend on boto3 (imported lazily, on first use).

Endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` or `S3_ENDPOINT_URL` from the
environment (unset means AWS itself). Credentials: boto3's standard chain (the
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` env vars a pod gets from its Secret, a
profile, or an instance role); never from a spec.

Atomicity: an S3 object appears whole or not at all, so `write_bytes` is one PUT for
small objects and one multipart upload (completed in a single call) above
`multipart_threshold`. botocore's own retries are switched off so that the one retry
policy (`sailvl.storage.retry`) decides; its errors are translated into the
`sailvl.storage.base` classes. A transient one is an `S3TransientError` whose `reason`
(`throttled`: 503 SlowDown / 429; `server_error`: other 5xx; `timeout`: connect or read
timeout; `connection`: reset or closed before an answer; `truncated`: a body shorter
than its Content-Length, or cut mid-stream) labels the retry metric.

Timeouts: `connect_timeout` / `read_timeout` arguments, else `SAILVL_S3_CONNECT_TIMEOUT`
/ `SAILVL_S3_READ_TIMEOUT` (seconds) from the environment, else 10 s / 60 s. A server
that stalls is a `timeout` after at most the read timeout, then retried.

Conditional create (`create_exclusive`): `If-None-Match: *` on PutObject, or on the
CompleteMultipartUpload of a multipart upload done here part by part (s3transfer cannot
pass the header); the server answers 412 PreconditionFailed when the key exists, and of
concurrent creators exactly one succeeds. AWS S3 has this since 2024-08; SeaweedFS (the
server the tests run, 4.x) enforces it on both calls (tests/integration/
test_s3_conditional.py). AWS's 409 ConditionalRequestConflict (a concurrent conditional
write still in progress) is transient. A server that ignores the header would make
every create "succeed": `create_once` then still detects a lost race by reading back.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from sailvl.storage.base import NotFoundError, StorageError, TransientStorageError, check_key

TIMEOUT_ENV = ("SAILVL_S3_CONNECT_TIMEOUT", "SAILVL_S3_READ_TIMEOUT")

ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "ConditionalRequestConflict",
}
_PRECONDITION = {"PreconditionFailed", "412"}
PART_SIZE = 64 << 20  # multipart part size of conditional creates (S3 minimum: 5 MiB)


def endpoint_from_env() -> str | None:
    """The S3 endpoint URL from the environment, or None for AWS."""
    for name in ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


class S3TransientError(TransientStorageError):
    """A transient S3 failure; `reason` says which kind (see the module docstring)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _timeout(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return value
    raw = os.environ.get(env, "")
    try:
        out = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{env}: not a number of seconds: {raw!r}") from None
    if out <= 0:
        raise ValueError(f"{env}: must be > 0, got {raw!r}")
    return out


def translate(exc: Exception, what: str) -> StorageError:
    """Map a botocore exception onto NotFound / Transient / StorageError."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND or status == 404:
            return NotFoundError(f"s3: {what} not found ({code})")
        if code in _TRANSIENT or status >= 500 or status == 429:
            slow = code in ("SlowDown", "Throttling", "ThrottlingException") or status in (429, 503)
            reason = "throttled" if slow else "server_error"
            return S3TransientError(f"s3: {what}: {code} (HTTP {status})", reason)
        return StorageError(f"s3: {what}: {code} (HTTP {status}): {err.get('Message', '')}")
    if isinstance(exc, (bx.ReadTimeoutError, bx.ConnectTimeoutError)):
        return S3TransientError(f"s3: {what}: {exc}", "timeout")
    if isinstance(exc, bx.IncompleteReadError) or type(exc).__name__ == "ResponseStreamingError":
        return S3TransientError(f"s3: {what}: {exc}", "truncated")
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):
        return S3TransientError(f"s3: {what}: {exc}", "connection")
    return StorageError(f"s3: {what}: {exc}")


class _BodyReader(io.RawIOBase):
    """Adapts a botocore StreamingBody to a raw binary stream (wrapped buffered).

    A body that breaks mid-read (reset, short body) raises the translated
    `S3TransientError` naming the object, never a raw botocore/urllib3 error."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        from botocore.exceptions import BotoCoreError

        try:
            data = self._body.read(len(buf))
        except BotoCoreError as exc:
            raise translate(exc, self._what) from exc
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3Store:
    """A store rooted at `s3://bucket/prefix`."""

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        multipart_threshold: int = 64 << 20,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        rest = uri.split("://", 1)[1]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"uri: no bucket in {uri!r}")
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self.multipart_threshold = multipart_threshold
        self._timeouts = (
            _timeout(connect_timeout, TIMEOUT_ENV[0], 10.0),
            _timeout(read_timeout, TIMEOUT_ENV[1], 60.0),
        )
        self._client: Any = None
        self._pid = -1

    @property
    def client(self) -> Any:
        # One client per process: boto3 clients are thread-safe but must not cross a
        # fork (dataloader workers), so a forked child builds its own.
        if self._client is None or self._pid != os.getpid():
            import boto3
            from botocore.config import Config as BotoConfig

            cfg = BotoConfig(
                # total_max_attempts counts the first try; botocore's `max_attempts`
                # counts retries only, so max_attempts=1 still retried once, unseen.
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=self._timeouts[0],
                read_timeout=self._timeouts[1],
                max_pool_connections=32,
            )
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, config=cfg
            )
            self._pid = os.getpid()
        return self._client

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what) from exc

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError

        resp = self._call(key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        try:
            return bytes(resp["Body"].read())
        except BotoCoreError as exc:
            raise translate(exc, key) from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        if len(data) < self.multipart_threshold:
            self._call(
                key, self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data
            )
            return
        from boto3.s3.transfer import TransferConfig

        cfg = TransferConfig(multipart_threshold=self.multipart_threshold, use_threads=True)
        self._call(
            key,
            self.client.upload_fileobj,
            Fileobj=io.BytesIO(data),
            Bucket=self.bucket,
            Key=self._key(key),
            Config=cfg,
        )

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create `key` only if absent (`If-None-Match: *`; see the module docstring)."""
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            if len(data) < self.multipart_threshold:
                self.client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
            else:
                self._multipart_exclusive(full, data)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _PRECONDITION:
                return False
            raise translate(exc, key) from exc
        except BotoCoreError as exc:
            raise translate(exc, key) from exc
        return True

    def _multipart_exclusive(self, full: str, data: bytes) -> None:
        c = self.client
        upload = c.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"]
        try:
            parts = []
            for n, start in enumerate(range(0, len(data), PART_SIZE), 1):
                body = data[start : start + PART_SIZE]
                part = c.upload_part(
                    Bucket=self.bucket, Key=full, UploadId=upload, PartNumber=n, Body=body
                )
                parts.append({"ETag": part["ETag"], "PartNumber": n})
            c.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            with contextlib.suppress(Exception):  # leave no upload open
                c.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload)
            raise

    def exists(self, key: str) -> bool:
        try:
            self._call(key, self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except NotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        full = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        if prefix.endswith("/") and not full.endswith("/"):
            full += "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: dict[str, str] = {}
        keys: list[str] = []
        while True:
            resp = self._call(
                prefix or "/",
                self.client.list_objects_v2,
                Bucket=self.bucket,
                Prefix=full,
                **token,
            )
            keys.extend(obj["Key"][strip:] for obj in resp.get("Contents", []))
            if not resp.get("IsTruncated"):
                break
            token = {"ContinuationToken": resp["NextContinuationToken"]}
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        self._call(key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def open(self, key: str) -> BinaryIO:
        resp = self._call(key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return io.BufferedReader(_BodyReader(resp["Body"], key), buffer_size=1 << 20)  # type: ignore[return-value]
