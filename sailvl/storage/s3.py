"""`s3://bucket/prefix` backend on boto3 (imported lazily, on first use).

Endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` or `S3_ENDPOINT_URL` from the
environment (unset means AWS itself). Credentials: boto3's standard chain (the
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` env vars a pod gets from its Secret, a
profile, or an instance role); never from a spec.

Atomicity: an S3 object appears whole or not at all, so `write_bytes` is one PUT for
small objects and one multipart upload (completed in a single call) above
`multipart_threshold`. botocore's own retries are switched off so that the one retry
policy (`sailvl.storage.retry`) decides; its errors are translated into the
`sailvl.storage.base` classes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from sailvl.storage.base import NotFoundError, StorageError, TransientStorageError, check_key

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
}


def endpoint_from_env() -> str | None:
    """The S3 endpoint URL from the environment, or None for AWS."""
    for name in ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


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
            return TransientStorageError(f"s3: {what}: {code} (HTTP {status})")
        return StorageError(f"s3: {what}: {code} (HTTP {status}): {err.get('Message', '')}")
    transient = (bx.ConnectionError, bx.HTTPClientError, bx.IncompleteReadError)
    if isinstance(exc, transient) or type(exc).__name__ == "ResponseStreamingError":
        return TransientStorageError(f"s3: {what}: {exc}")
    return StorageError(f"s3: {what}: {exc}")


class _BodyReader(io.RawIOBase):
    """Adapts a botocore StreamingBody to a raw binary stream (wrapped buffered)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._body.read(len(buf))
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
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        rest = uri.split("://", 1)[1]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"uri: no bucket in {uri!r}")
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self.multipart_threshold = multipart_threshold
        self._timeouts = (connect_timeout, read_timeout)
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
                retries={"max_attempts": 1, "mode": "standard"},
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
        return io.BufferedReader(_BodyReader(resp["Body"]), buffer_size=1 << 20)  # type: ignore[return-value]
