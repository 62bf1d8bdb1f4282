"""The `sailvl data import INPUT OUTPUT` command: plan, import units, finalise.

Flow: detect (or take `--format`) the format; plan the units (input files); record the
plan in `<output>/_import/plan.json` (a rerun must plan the same units with the same
part limits, or its part numbers would not line up; a different plan is refused);
import every unit (inline with `--workers 1`, else a process pool, one unit per
process at a time); finalise (duplicates, rejects, manifest). An output that already
has its manifest with the same plan is complete: the command says so and exits 0.

Exit codes: 0 done; 2 invalid input (format, plan mismatch) or reject ratio above
`--max-reject-ratio` (no manifest written); 1 a unit failed (I/O, unreadable input
file): the others still finish, so the rerun only redoes what is missing. A storage
failure outside the units (planning: listing the input, the plan object; finalising:
the part manifests, rejects, the manifest) is also exit 1 with one `failed:` line that
names the object and the attempts (`sailvl.storage.retry`), never a traceback: a
DataJob pod's index is then retried, and the rerun resumes. Once the store gave up on
one unit, no further unit is started (`_import_all`), so a store that is down fails
the import in about one unit's retries, not one per input file.

Sharded (an Indexed Job's pods, `--shard-index k --shard-count n`): pod k imports the
units i with i % n == k, the same static assignment as the CaptionJob, then tries to
finalise. Pods that finish while others' units are missing exit 0 without a manifest;
the last one writes it. Finalising is deterministic (same duplicates, same rejects,
same manifest bytes) and every write is atomic, so two pods finalising at once write
identical objects.

Progress: worker processes send (rows, rejected, bytes) deltas over a queue; the
parent prints one status line (files done, rows, rejected, rows/s, MB/s) to stderr,
redrawn in place on a terminal, every 10 s otherwise (pod logs).
"""

from __future__ import annotations

import collections
import contextlib
import json
import multiprocessing as mp
import os
import queue
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sailvl.data.importers import FormatError, detect, load
from sailvl.data.importers.finalize import ImportIncomplete, ImportRejected, finalize
from sailvl.data.importers.inputs import Unit, store_at
from sailvl.data.importers.parts import Limits, import_unit
from sailvl.data.manifest import MANIFEST
from sailvl.storage import NotFoundError, StorageError, TransientStorageError

PLAN = "_import/plan.json"
EXIT_FAILED, EXIT_INVALID = 1, 2
_QUEUE: Any = None


class Progress:
    """The status line: totals since start and rates over the whole run."""

    def __init__(self, files: int, *, enabled: bool = True, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.files, self.files_done = files, 0
        self.rows = self.rejected = self.bytes = 0
        self.t0 = self.last = time.monotonic()

    def add(self, delta: dict[str, int]) -> None:
        self.rows += delta.get("rows", 0)
        self.rejected += delta.get("rejected", 0)
        self.bytes += delta.get("bytes", 0)
        self.draw()

    def line(self) -> str:
        dt = max(time.monotonic() - self.t0, 1e-6)
        return (
            f"import: {self.files_done}/{self.files} files | {self.rows:,} rows "
            f"({self.rejected:,} rejected) | {self.rows / dt:,.1f} rows/s | "
            f"{_size(self.bytes / dt)}/s"
        )

    def draw(self, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < (0.5 if self.tty else 10)):
            return
        self.last = now
        end = "\n" if final or not self.tty else ""
        print(("\r" if self.tty else "") + self.line(), end=end, file=self.stream, flush=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def _init_worker(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def _run_unit(
    fmt: str, unit: dict[str, Any], out: str, limits: Limits, threads: int
) -> dict[str, Any]:
    """Worker-process entry: import one unit, progress over the shared queue."""
    report = _QUEUE.put if _QUEUE else None
    return import_unit(load(fmt), Unit(**unit), out, limits, report, threads)


def check_plan(out_uri: str, plan: dict[str, Any]) -> bool:
    """Record the plan, or compare with the recorded one. True if a manifest exists."""
    out = store_at(out_uri)
    try:
        old = json.loads(out.read_bytes(PLAN))
    except NotFoundError:
        if out.exists(MANIFEST):
            raise FormatError(
                f"{out_uri}: already holds a dataset not written by an import"
            ) from None
        out.write_bytes(PLAN, json.dumps(plan, indent=1).encode())
        return False
    if old != plan:
        raise FormatError(
            f"{out_uri}: holds an import with a different plan (inputs, format or part "
            "limits changed); import into a new output"
        )
    return out.exists(MANIFEST)


def run_import(args: Any, progress_stream: Any = None) -> int:
    try:
        fmt = args.format or detect(args.input)
        units = load(fmt).plan(args.input, args.image_root, vars(args))
        limits = Limits(rows=args.rows_per_shard, bytes=args.shard_bytes)
        plan = {
            "format": fmt,
            "input": args.input,
            "limits": {"rows": limits.rows, "bytes": limits.bytes},
            "units": [u.to_dict() for u in units],
        }
        if check_plan(args.output, plan):
            print(f"{args.output}: import already complete", file=sys.stderr)
            return 0
    except (FormatError, ValueError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StorageError as exc:  # the store failed (after its retries), not the input
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    mine = [u for u in units if u.index % args.shard_count == args.shard_index]
    bar = Progress(len(mine), enabled=not args.no_progress, stream=progress_stream)
    par = (args.workers, args.threads)
    errors, not_started = _import_all(fmt, mine, args.output, limits, par, bar)
    bar.draw(final=True)
    if errors:
        for err in errors:
            print(f"failed: {err}", file=sys.stderr)
        if not_started:
            print(
                f"not started: {not_started} of {len(mine)} input files (stopped at the "
                "failure above; rerun the same command to resume)",
                file=sys.stderr,
            )
        return EXIT_FAILED
    meta = {"format": fmt, "input": args.input, "image_root": args.image_root or ""}
    try:
        manifest = finalize(args.output, units, max_reject_ratio=args.max_reject_ratio, meta=meta)
    except ImportRejected as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ImportIncomplete as exc:  # another pod's units are still running
        print(f"shard {args.shard_index} done; not finalising yet: {exc}", file=sys.stderr)
        return 0
    except StorageError as exc:  # no manifest written: the rerun finalises again
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    info = manifest.meta["import"]
    bad = {k: v for k, v in info["rejected"].items() if v}
    print(
        f"{args.output}: {info['rows_out']} samples in {len(manifest.shards)} shards; "
        f"{info['rows_in'] - info['rows_out']} rejected {bad or ''}",
        file=sys.stderr,
    )
    return 0


def _import_all(
    fmt: str, units: list[Unit], out: str, limits: Limits, par: tuple[int, int], bar: Progress
) -> tuple[list[str], int]:
    """Import `units`: (one error line per failed unit, units not started).

    A unit that fails for a reason of its own (an unreadable input file) does not stop
    the others. A unit that fails because the store gave up (a `TransientStorageError`:
    its retries ran out) stops the import from starting further units: each would spend
    its own retries on the same failing store, so a 30,000-file import against a store
    that is down would take hours to fail. Units already running end as they end; the
    rerun imports the rest."""
    workers, threads = par
    errors: list[str] = []
    if workers <= 1:
        for n, unit in enumerate(units):
            try:
                import_unit(load(fmt), unit, out, limits, bar.add, threads)
            except Exception as exc:  # noqa: BLE001 - reported, the other units go on
                errors.append(f"{unit.uri}: {exc}")
                if isinstance(exc, TransientStorageError):
                    return errors, len(units) - n - 1
            finally:
                bar.files_done += 1
        return errors, 0
    # Units are handed to the pool one per free process, never queued ahead, so that a
    # failing store stops the import with at most `workers` units having tried it.
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    todo, stop = collections.deque(units), False
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(q,)
    ) as ex:
        running: dict[Future[Any], Unit] = {}
        while True:
            while todo and not stop and len(running) < workers:
                u = todo.popleft()
                running[ex.submit(_run_unit, fmt, u.to_dict(), out, limits, threads)] = u
            if not running:
                break
            with contextlib.suppress(queue.Empty):
                bar.add(q.get(timeout=0.2))
            for fut in [f for f in running if f.done()]:
                unit = running.pop(fut)
                bar.files_done += 1
                err = fut.exception()
                if err is not None:
                    errors.append(f"{unit.uri}: {err}")
                    # A dead worker process breaks the pool: nothing more can start.
                    stop = stop or isinstance(err, (TransientStorageError, BrokenProcessPool))
        while True:  # the last deltas
            try:
                bar.add(q.get_nowait())
            except queue.Empty:
                break
    not_started = len(todo)
    return errors, not_started


def add_arguments(p: Any) -> None:
    """The `data import` options (called by `sailvl.cli`)."""
    p.add_argument("input", help="input file or folder/prefix (file path, file:// or s3://)")
    p.add_argument("output", help="output dataset URI (file path, file:// or s3://)")
    p.add_argument("--format", choices=["llava", "internvl", "webdataset", "hfparquet"])
    p.add_argument("--image-root", help="where relative image paths resolve")
    p.add_argument("--workers", type=int, default=1, help="processes (one input file each)")
    p.add_argument("--threads", type=int, default=8,
                   help="image reads in flight per process (object-store latency)")  # fmt: skip
    p.add_argument("--max-reject-ratio", type=float, default=0.01,
                   help="fail (exit 2, no manifest) above this share of rejected rows")  # fmt: skip
    p.add_argument("--rows-per-shard", type=int, default=1000, help="input rows per part")
    p.add_argument("--shard-bytes", type=int, default=256 << 20, help="sample bytes per part")
    p.add_argument("--caption-from-alt-text", action="store_true",
                   help="webdataset: also use the web text as `caption` (train on it as is)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    index = int(os.environ.get("JOB_COMPLETION_INDEX", "0"))
    p.add_argument("--shard-index", type=int, default=index,
                   help="this pod's index k (default: JOB_COMPLETION_INDEX, else 0)")  # fmt: skip
    p.add_argument("--shard-count", type=int, default=1,
                   help="pods in all; pod k imports units i with i %% count == k")  # fmt: skip


def main(args: Any) -> int:
    if min(args.workers, args.threads, args.rows_per_shard, args.shard_bytes) < 1:
        print(
            "invalid: --workers, --threads, --rows-per-shard, --shard-bytes: must be >= 1",
            file=sys.stderr,
        )
        return EXIT_INVALID
    if not 0 <= args.shard_index < args.shard_count:
        print("invalid: --shard-index: must be in [0, --shard-count)", file=sys.stderr)
        return EXIT_INVALID
    if not 0 <= args.max_reject_ratio <= 1:
        print("invalid: --max-reject-ratio: must be in [0, 1]", file=sys.stderr)
        return EXIT_INVALID
    return run_import(args)
