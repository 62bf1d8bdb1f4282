"""The caption worker: one pod's shards through read -> decode -> generate -> write.

Pipeline. Three stages run concurrently so the accelerator never waits on I/O:

    prefetch thread:  read shard, decode images, build prompts, backend.prepare
          | queue (at most `prefetch_shards` decoded shards ahead)
    main thread:      backend.generate in batches, post-filter, build the output table
          | queue (at most 2 shards waiting for upload)
    writer thread:    serialise Parquet, atomic write_bytes, progress, metrics

Generation stays on the main thread (engines such as LMDeploy and CUDA contexts prefer
the thread that created them). Each stage retries its own step of a shard up to
`shard_retries` extra times; a shard that still fails is counted `failed`, kept in
`failures` (the shard's URI, the stage, the error) and the pipeline moves on. The run returns 1 if any shard failed, so the Indexed Job's
per-index backoff restarts the pod, which skips every committed shard and redoes only
the rest.

Sample-level failures never fail a shard: a broken or missing image (`broken_image`,
`no_image`) or a caption the post-filter rejects (`empty_caption`, `too_short`,
`too_long`, `duplicate`) is counted by reason and either kept with an empty caption and
the reason in `caption_status` (filter.failed_rows = mark, the default, which keeps
every input id exactly once in the output) or left out (drop).

Assignment. With `assignment: dynamic` (the default) the prefetch thread asks the
`Claimer` (`sailvl.caption.claims`) for the next shard whenever it has room, so a fast pod
takes more shards and a slow one fewer, and a shard held too long is taken over; with
`static`, pod k takes the shards i % n == k.

Exactly once: an output shard is one atomic object, created only if absent
(`shards.commit_shard`: the first commit wins, a taken-over straggler's late result is
counted `superseded` and dropped); a pod killed mid-shard leaves no output for it, and
the shard is claimed again and regenerated whole.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sailvl.caption import shards as sh
from sailvl.caption.backends import CaptionBackend
from sailvl.caption.claims import Claimer
from sailvl.caption.config import CaptionConfig
from sailvl.caption.postfilter import OK, PostFilter
from sailvl.caption.progress import Progress
from sailvl.caption.prompts import build_prompt

log = logging.getLogger("sailvl.caption")
ProgressFn = Callable[[dict[str, Any]], None]
_END = object()
MAX_FAILURES_KEPT = 8


@dataclass
class Work:
    """One shard moving through the pipeline."""

    key: str
    gen: int = 0  # claim generation (dynamic assignment)
    table: Any = None
    items: list[tuple[int, Any]] = field(default_factory=list)  # (row, prepared)
    kinds: list[str] = field(default_factory=list)  # prompt kind per row
    status: dict[int, str] = field(default_factory=dict)  # row -> failure reason
    captions: dict[int, str] = field(default_factory=dict)
    error: BaseException | None = None


def decode_image(raw: Any) -> Any:
    """Decode encoded image bytes to an RGB PIL image; raises on broken data."""
    from PIL import Image

    img = Image.open(io.BytesIO(raw))
    img.load()
    return img.convert("RGB")


def _retry(fn: Callable[[], Any], attempts: int, what: str) -> Any:
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - retried, then re-raised
            if attempt + 1 == attempts:
                raise
            log.warning("%s failed (attempt %d/%d): %s", what, attempt + 1, attempts, exc)
    raise AssertionError("unreachable")


class CaptionWorker:
    """Runs the shards of one pod. `backend` and the stores are injected for tests."""

    def __init__(
        self,
        cfg: CaptionConfig,
        backend: CaptionBackend,
        in_store: Any,
        out_store: Any,
        on_progress: ProgressFn | None = None,
        registry: Any = None,
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.in_store = in_store
        self.out_store = out_store
        self.on_progress = on_progress
        self.attempts = cfg.shard_retries + 1
        self.keys = sh.shard_keys(in_store, cfg.input_format)
        self.out_keys = {k: self._out_key(k) for k in self.keys}
        self.claimer: Claimer | None = None
        self.failures: list[tuple[str, BaseException]] = []  # (what, error), see `_failed`
        if cfg.assignment == "dynamic":
            self.mine = list(self.keys)
            self.claimer = Claimer(
                out_store,
                self.keys,
                self._committed_inputs,
                done=lambda key: bool(out_store.exists(self.out_keys[key])),
                index=cfg.shard_index,
                count=cfg.shard_count,
                timeout_s=cfg.claim_timeout_s,
                max_takeovers=cfg.max_takeovers,
                poll_s=cfg.claim_poll_s,
            )
        else:
            self.mine = sh.assigned(self.keys, cfg.shard_index, cfg.shard_count)
        self.progress = Progress(
            len(self.mine),
            job=(cfg.job_namespace, cfg.job_name),
            registry=registry,
            assignment=cfg.assignment,
        )

    # -- stage 1: read + decode + prepare -------------------------------------------
    def load(self, key: str, gen: int = 0) -> Work:
        work = Work(key=key, gen=gen)
        try:
            data = _retry(lambda: self.in_store.read_bytes(key), self.attempts, f"read {key}")
            if self.cfg.input_format == "dataset":
                work.table = sh.read_table(data)
            else:  # tars / image Parquet straight into dataset columns (no import pass)
                from sailvl.data.importers.caption_input import read_input

                fmt, allow_http = self.cfg.input_format, self.cfg.allow_http
                work.table = read_input(data, key, fmt, self.in_store, allow_http)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed shard
            work.error = exc
            return work
        cols = work.table.column_names
        n = len(work.table)

        def column(name: str) -> list[Any]:
            return work.table.column(name).to_pylist() if name in cols else [None] * n

        images, alts, langs = column("images"), column("alt_text"), column("lang")
        p = self.cfg.prompt
        for row in range(n):
            prompt, kind = build_prompt(
                version=p.version,
                prompt_lang=p.lang,
                sample_lang=langs[row],
                alt_text=alts[row],
                use_alt_text=p.use_alt_text,
                max_alt_text_chars=p.max_alt_text_chars,
            )
            work.kinds.append(kind)
            if not images[row]:
                work.status[row] = "no_image"
                continue
            try:
                # Multi-image rows are captioned from their first image.
                raw = bytes(images[row][0])
                work.items.append((row, self.backend.prepare(prompt, decode_image(raw), raw)))
            except Exception:  # noqa: BLE001 - a broken image is a sample failure
                work.status[row] = "broken_image"
        return work

    # -- stage 2: generate + post-filter ---------------------------------------------
    def generate(self, work: Work) -> Work:
        bs = self.cfg.engine.batch_size
        for start in range(0, len(work.items), bs):
            chunk = work.items[start : start + bs]
            t0 = time.monotonic()
            outs = _retry(
                lambda c=chunk: self.backend.generate([p for _, p in c]),
                self.attempts,
                f"generate {work.key}",
            )
            self.progress.batch(time.monotonic() - t0)
            if len(outs) != len(chunk):
                raise RuntimeError(f"backend returned {len(outs)} captions for {len(chunk)}")
            for (row, _), text in zip(chunk, outs, strict=True):
                work.captions[row] = (text or "").strip()
        flt = PostFilter(self.cfg.filter)
        for row in sorted(work.captions):
            reason = flt.check(work.captions[row])
            if reason != OK:
                work.status[row] = reason
        return work

    # -- stage 3: build + write ------------------------------------------------------
    def commit(self, work: Work) -> None:
        n = len(work.table)
        drop = self.cfg.filter.failed_rows == "drop"
        rows = [r for r in range(n) if not (drop and r in work.status)]
        extra = {
            "caption": [("" if r in work.status else work.captions[r]) for r in rows],
            "caption_status": [work.status.get(r, OK) for r in rows],
            "caption_model": [self.cfg.model_name] * len(rows),
            "caption_prompt_version": [self.cfg.prompt.version] * len(rows),
            "caption_prompt_kind": [work.kinds[r] for r in rows],
        }
        # The attempt's id in the file's metadata makes its bytes unique, so a commit that
        # lost to an identical twin (a taken-over shard) is told apart from our own
        # commit whose answer was lost (`create_once` compares bytes).
        table = sh.build_output(work.table, rows, extra)
        meta = {**(table.schema.metadata or {}), b"sailvl.attempt": uuid.uuid4().hex.encode()}
        data = sh.table_bytes(table.replace_schema_metadata(meta))
        out_key = self.out_keys[work.key]
        facts = sh.shard_facts(data, rows=len(rows), captioned=n - len(work.status), gen=work.gen)
        won = _retry(
            lambda: sh.commit_shard(self.out_store, out_key, data, facts),
            self.attempts,
            f"write {out_key}",
        )
        if not won:  # taken over and committed by another pod first: ours is dropped
            log.info("shard %s: committed by another pod first; result dropped", work.key)
            self.progress.shard("superseded")
            self._report()
            return
        self.progress.add(
            captioned=n - len(work.status), processed=n, failures=Counter(work.status.values())
        )
        self.progress.shard("committed")
        self._report()

    def _fail(self, work: Work, stage: str) -> None:
        log.error("shard %s failed in %s: %r", work.key, stage, work.error)
        what = f"shard {self.cfg.input_uri.rstrip('/')}/{work.key} ({stage})"
        self._failed(what, work.error or RuntimeError("no error recorded"))

    def _failed(self, what: str, exc: BaseException) -> None:
        """Count a failed shard and keep why (`failures`: what the pod reports in its
        resource's status before it exits 1; the first few are enough)."""
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append((what, exc))
        self.progress.shard("failed")
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress.snapshot())

    # -- drivers ---------------------------------------------------------------------
    def _out_key(self, key: str) -> str:
        from sailvl.data.importers.caption_input import output_key

        return output_key(key, self.cfg.input_format)

    def _committed_inputs(self) -> set[str]:
        done = sh.indexed_outputs(self.out_store)
        return {k for k in self.keys if self.out_keys[k] in done}

    def pending(self) -> list[str]:
        """Static assignment: this pod's shards not committed yet."""
        todo = []
        for key in self.mine:
            if self.out_store.exists(self._out_key(key)):
                self.progress.shard("skipped")
            else:
                todo.append(key)
        return todo

    def todo(self) -> Iterator[tuple[str, int]]:
        """(shard, claim generation) to caption, in turn: this pod's pending shards
        (static), or the shards the claimer hands out, claimed one at a time (dynamic)."""
        if self.claimer is None:
            yield from ((key, 0) for key in self.pending())
            return
        while (claim := self.claimer.next()) is not None:
            out_key = self.out_keys[claim.key]
            if self.out_store.exists(out_key):  # committed since the claimer's listing
                sh.ensure_index(self.out_store, out_key)
                self.progress.shard("skipped")
                continue
            yield claim.key, claim.gen

    def run_sequential(self) -> dict[str, Any]:
        """The baseline: each shard read, generated and written in turn, no overlap."""
        for key, gen in self.todo():
            self._generate_into(self.load(key, gen), self.commit, "generate/write")
        return self._finish()

    def run(self) -> dict[str, Any]:
        """The pipelined run (see the module docstring); returns the final snapshot."""
        todo = self.todo()
        loaded: queue.Queue[Any] = queue.Queue(maxsize=self.cfg.prefetch_shards)
        ready: queue.Queue[Any] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def prefetch() -> None:
            try:
                for key, gen in todo:
                    if stop.is_set():
                        break
                    loaded.put(self.load(key, gen))
            except Exception as exc:  # noqa: BLE001 - the store failed while claiming
                log.error("claiming shards failed: %r", exc)
                self._failed(f"claiming shards on {self.cfg.output_uri}", exc)
            loaded.put(_END)

        def writer() -> None:
            for work in _drain(ready):
                try:
                    self.commit(work)
                except Exception as exc:  # noqa: BLE001 - a failed shard, go on
                    work.error = exc
                    self._fail(work, "write")

        threads = [
            threading.Thread(target=prefetch, name="caption-prefetch", daemon=True),
            threading.Thread(target=writer, name="caption-writer", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            for work in _drain(loaded):
                self._generate_into(work, ready.put, "generate")
        finally:
            stop.set()
            ready.put(_END)
            threads[1].join()
            # Unblock a prefetch thread waiting on a full queue (early exit), then join.
            while threads[0].is_alive():
                with contextlib.suppress(queue.Empty):
                    loaded.get(timeout=0.1)
            threads[0].join()
        return self._finish()

    def _generate_into(self, work: Work, sink: Callable[[Work], None], stage: str) -> None:
        """Caption a loaded shard and hand it to `sink` (the writer queue, or `commit`).
        A shard that failed to load, or whose generation or sink raised, is recorded as
        failed under `stage` instead of stopping the run."""
        if work.error is not None:
            self._fail(work, "read")
            return
        try:
            sink(self.generate(work))
        except Exception as exc:  # noqa: BLE001
            work.error = exc
            self._fail(work, stage)

    def _finish(self) -> dict[str, Any]:
        snap = self.progress.snapshot()
        if self.claimer is not None:
            snap["claims"] = dict(self.claimer.stats)
        if snap["shards_failed"] == 0:
            try:
                snap["manifest_written"] = sh.write_output_manifest(
                    self.in_store, self.out_store, [self.out_keys[k] for k in self.keys]
                )
            except Exception as exc:  # noqa: BLE001 - next pod to finish retries it
                log.warning("output manifest not written: %s", exc)
        self._report()
        return snap


def _drain(q: queue.Queue[Any]) -> Iterator[Any]:
    while (item := q.get()) is not _END:
        yield item
