"""One unit (input file) -> numbered output parts, resumable at part granularity.

Layout. Unit i writes parts `parts/<i:05d>-<k:05d>/` for k = 0, 1, ...; each part is
a small dataset written by the ordinary `DatasetWriter` (Parquet shard(s), then its
own `manifest.json` last), so a part is committed exactly when its manifest exists,
by the writer's own rule. The part manifest's `meta` records the input row range it
covers (`rows_start`, `rows_end`: positions in the unit's row stream, rejected rows
included), the rejected rows (id, reason, detail, row) and whether it is the unit's
last part (`unit_done`).

Deterministic assignment. A part closes after `rows` input rows or once its samples
reach `bytes`; part k+1 starts at the row where part k ended. A resumed unit reads
the manifest of its last committed part, skips (parses, but neither fetches nor
decodes images for) the rows before that part's `rows_end`, and rewrites from the
first uncommitted part on. A part killed half-way has no manifest and is written
again whole under the same name (object writes are atomic), so after any number of
kills every input row lands in exactly one committed part. The part manifest also
lists the ids it holds, in row order, so finishing the import (duplicates) needs no
second read of the data.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sailvl.data.dataset import DatasetWriter, WriterConfig
from sailvl.data.importers.inputs import Meter, SubStore, Unit, store_at
from sailvl.data.importers.records import BAD_ROW, Candidate, ImageFetcher, Reject, to_sample
from sailvl.data.manifest import MANIFEST, Manifest, SampleError
from sailvl.storage import Store

PART_RE = re.compile(r"^parts/(\d{5,})-(\d{5,})/" + re.escape(MANIFEST) + "$")
Report = Callable[[dict[str, int]], None]


@dataclass(frozen=True)
class Limits:
    """When a part closes: after `rows` input rows or `bytes` of sample data."""

    rows: int = 1000
    bytes: int = 256 << 20


def part_key(unit: int, k: int) -> str:
    return f"parts/{unit:05d}-{k:05d}"


def committed_parts(out: Store, unit: int) -> list[tuple[str, Manifest]]:
    """The unit's committed parts, in order, up to the first gap."""
    ks = sorted(
        int(m.group(2))
        for key in out.list(f"parts/{unit:05d}-")
        if (m := PART_RE.match(key)) and int(m.group(1)) == unit
    )
    out_parts = []
    for expect, k in enumerate(ks):
        if k != expect:
            break
        key = part_key(unit, k)
        out_parts.append((key, Manifest.from_json(out.read_bytes(f"{key}/{MANIFEST}"))))
    return out_parts


def _sample_bytes(sample: dict[str, Any]) -> int:
    text = sum(len(t["content"]) for t in sample["conversations"])
    return sum(len(b) for b in sample["images"]) + text + len(sample["alt_text"])


class _Part:
    def __init__(self, out: Store, unit: Unit, k: int, start: int, limits: Limits) -> None:
        self.key = part_key(unit.index, k)
        cfg = WriterConfig(
            max_samples_per_shard=limits.rows,
            max_bytes_per_shard=limits.bytes,
            check_unique_ids=False,  # duplicates are resolved over the whole output
        )
        self.writer = DatasetWriter(SubStore(out, self.key), cfg)
        self.start, self.rows, self.bytes = start, 0, 0
        self.rejects: list[dict[str, Any]] = []
        self.ids: list[str] = []

    def close(self, end: int, done: bool) -> None:
        self.writer.meta = {
            "rows_start": self.start,
            "rows_end": end,
            "unit_done": done,
            "rejects": self.rejects,
            "ids": self.ids,  # in row order: finalize finds duplicates without reading shards
        }
        self.writer.close()


def import_unit(
    fmt: Any,
    unit: Unit,
    out_uri: str,
    limits: Limits,
    report: Report | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Import one unit into its parts (resuming); returns {unit, parts, skipped_rows}.
    `threads` > 1 fetches and decodes images of the next rows concurrently (see
    `_converted`); parts are still cut in row order, so the output does not depend on it."""
    out = store_at(out_uri)
    done = committed_parts(out, unit.index)
    start, k = 0, len(done)
    if done:
        last = done[-1][1].meta
        if last.get("unit_done"):
            return {"unit": unit.index, "parts": k, "skipped_rows": last["rows_end"]}
        start = int(last["rows_end"])
    meter, fetcher = Meter(), ImageFetcher(unit.image_root)
    tick = _Ticker(meter, fetcher, report)
    part: _Part | None = None
    pos = -1
    todo = ((pos, c) for pos, c in enumerate(fmt.rows(unit, meter)) if pos >= start)
    for pos, cand, result in _converted(todo, fetcher, unit.source, threads):
        if part is None:
            part = _Part(out, unit, k, pos, limits)
        rejected = _add(part, cand, result, pos)
        tick.row(rejected)
        if part.rows >= limits.rows or part.bytes >= limits.bytes:
            part.close(pos + 1, done=False)
            part, k = None, k + 1
    if part is None:  # the unit ended on a part boundary: an empty last part marks it done
        part = _Part(out, unit, k, max(pos + 1, start), limits)
    part.close(max(pos + 1, start), done=True)
    tick.flush()
    return {"unit": unit.index, "parts": k + 1, "skipped_rows": start}


def _convert(cand: Candidate, fetcher: ImageFetcher, source: str) -> dict[str, Any] | Reject:
    try:
        return to_sample(cand, fetcher, source)
    except Reject as rej:
        return rej


def _converted(
    todo: Iterator[tuple[int, Candidate]], fetcher: ImageFetcher, source: str, threads: int
) -> Iterator[tuple[int, Candidate, dict[str, Any] | Reject]]:
    """(pos, candidate, sample or Reject) in row order.

    With `threads` > 1, rows are converted (image reads: one object-store round trip
    each, and the decode check) by a thread pool over a window of 2 x threads rows
    ahead, and results are taken back in submission order. The window bounds memory;
    the order keeps part boundaries, and so resume, identical to a serial run."""
    if threads <= 1:
        for pos, cand in todo:
            yield pos, cand, _convert(cand, fetcher, source)
        return
    window: deque[tuple[int, Candidate, Future[Any]]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="import-fetch") as pool:
        for pos, cand in todo:
            window.append((pos, cand, pool.submit(_convert, cand, fetcher, source)))
            if len(window) >= 2 * threads:
                p, c, fut = window.popleft()
                yield p, c, fut.result()
        while window:
            p, c, fut = window.popleft()
            yield p, c, fut.result()


def _add(part: _Part, cand: Candidate, result: dict[str, Any] | Reject, pos: int) -> bool:
    part.rows += 1
    try:
        if isinstance(result, Reject):
            raise result
        sample = result
        part.writer.write(sample)
        part.ids.append(sample["id"])
    except Reject as rej:
        part.rejects.append(
            {"id": cand.id, "reason": rej.reason, "detail": rej.detail[:300], "row": pos}
        )
        return True
    except SampleError as exc:  # a field the dataset format refuses (wrong type)
        part.rejects.append({"id": cand.id, "reason": BAD_ROW, "detail": str(exc), "row": pos})
        return True
    part.bytes += _sample_bytes(sample)
    return False


class _Ticker:
    """Sends progress deltas (rows, rejected, bytes) at most twice a second."""

    def __init__(self, meter: Meter, fetcher: ImageFetcher, report: Report | None) -> None:
        self.meter, self.fetcher, self.report = meter, fetcher, report
        self.rows = self.rejected = self.sent_bytes = 0
        self.last = time.monotonic()

    def row(self, rejected: bool) -> None:
        self.rows += 1
        self.rejected += int(rejected)
        if time.monotonic() - self.last >= 0.5:
            self.flush()

    def flush(self) -> None:
        total = self.meter.bytes + self.fetcher.bytes_read
        if self.report is not None:
            self.report(
                {"rows": self.rows, "rejected": self.rejected, "bytes": total - self.sent_bytes}
            )
        self.rows = self.rejected = 0
        self.sent_bytes = total
        self.last = time.monotonic()
