"""Input shards of a CaptionJob that are not yet in the dataset format.

`input.format` (CaptionJob `inputFormat`, `CaptionConfig.input_format`):

- `dataset` (default): a sailvl dataset (manifest.json + Parquet shards);
- `webdataset`: img2dataset tar shards (`<key>.jpg|png|webp`, `.txt`, `.json`); every
  tar under the input prefix is one caption shard;
- `parquet`: image Parquet, every `.parquet` under the input prefix one shard: either
  images embedded as HF `{bytes, path}` structs (`image` / `images`), or an image URL
  per row (`url` column, img2dataset's input layout; `path` of a struct without bytes).

What a URL means here: `file://` and `s3://` URLs (and paths relative to the input
prefix) are read through the storage layer, with the job's storage credentials; that
is the intended layout for a web crawl (download with img2dataset into object
storage once, then caption). `http://` / `https://` URLs are fetched only when
`allow_http` is set (`CaptionConfig.allow_http`; off by default, and off in every
test: a pod in a locked-down cluster has no egress, and a captioner that silently
crawls the web is not what a recaption job should do). A URL that is not allowed or
cannot be read leaves the row without images, which the worker records as `no_image`
in `caption_status`, so every input id still appears exactly once in the output.

Each input shard becomes an Arrow table with the dataset's columns (`id`, `images`,
`alt_text` = the web text, `caption` empty, ...) before the worker sees it; the
output shard is `<input key without its suffix>.parquet` and the output is a dataset.
"""

from __future__ import annotations

import io
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

from sailvl.data.importers.inputs import store_at
from sailvl.data.importers.records import Candidate
from sailvl.storage import StorageError, Store

log = logging.getLogger(__name__)
INPUT_FORMATS = ("dataset", "webdataset", "parquet")
SUFFIXES = {"webdataset": (".tar", ".tar.gz", ".tgz"), "parquet": (".parquet",)}
HTTP_TIMEOUT_S = 30


def shard_keys(store: Store, fmt: str) -> list[str]:
    """The input shards of a non-dataset input: matching keys under the prefix, sorted."""
    return sorted(k for k in store.list() if k.endswith(SUFFIXES[fmt]))


def output_key(key: str, fmt: str) -> str:
    """The output shard key for input shard `key` (same key for datasets)."""
    if fmt == "dataset":
        return key
    for suffix in SUFFIXES[fmt]:
        if key.endswith(suffix):
            return key[: -len(suffix)] + ".parquet"
    return key + ".parquet"


def fetch(ref: str, store: Store, allow_http: bool) -> bytes | None:
    """Image bytes for a path / URL (see the module docstring), None if not readable."""
    try:
        if ref.startswith(("http://", "https://")):
            if not allow_http:
                return None
            with urllib.request.urlopen(ref, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
                return bytes(resp.read())
        if "://" in ref or ref.startswith("/"):
            parent, name = ref.rstrip("/").rsplit("/", 1)
            return store_at(parent or "/").read_bytes(name)
        return store.read_bytes(ref)
    except (StorageError, OSError, ValueError) as exc:
        log.warning("image %s not readable: %s", ref, exc)
        return None


def _candidates(data: bytes, fmt: str, source: str) -> Iterator[Candidate]:
    if fmt == "webdataset":
        from sailvl.data.importers.webdataset import rows_from_tar

        return rows_from_tar(io.BytesIO(data))
    import pyarrow.parquet as pq

    from sailvl.data.importers.hfparquet import table_rows

    return table_rows(pq.ParquetFile(io.BytesIO(data)), source)


def read_input(data: bytes, key: str, fmt: str, store: Store, allow_http: bool) -> Any:
    """Input shard bytes -> an Arrow table in the dataset's columns (one row per input
    row, in order; rows whose image cannot be had get `images = []`)."""
    import pyarrow as pa

    from sailvl.data.manifest import arrow_schema

    source = key.rsplit("/", 1)[-1].split(".", 1)[0]
    rows = []
    for cand in _candidates(data, fmt, source):
        images = []
        for ref in cand.images:
            raw = ref if isinstance(ref, bytes) else fetch(ref, store, allow_http)
            if raw is None:
                images = []
                break
            images.append(raw)
        rows.append(
            {
                "id": cand.id,
                "images": images,
                "alt_text": cand.alt_text or cand.caption,  # the web text goes to the prompt
                "caption": "",
                "conversations": [],
                "source": source,
                "lang": cand.lang,
            }
        )
    return pa.Table.from_pylist(rows, schema=arrow_schema())
