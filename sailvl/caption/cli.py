"""`sailvl caption --config FILE`: the CaptionJob pod entry point.

`caption_main(argv)` parses `--config`, builds `CaptionConfig`, opens the stores,
builds the backend (which fetches the model when it lives in object storage), starts
the metrics server, runs the pipelined worker and returns the process exit code (0: all assigned
shards committed; 1: some shard failed, or the run could not start, so the Indexed Job
retries this index). Before it returns 1 it hands one line naming the failed object
(a shard's URI, the input listing, the model) and the error class to `on_failure`
(`sailvl.runtime.report.report_failure`: stderr, the termination message, the status).
Progress is logged as one JSON line per shard and written to
`<output>/_progress/pod-<index>.json` for the operator to aggregate into status.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

from sailvl.caption.config import CaptionConfig

log = logging.getLogger("sailvl.caption")


def run_caption(
    cfg: CaptionConfig,
    *,
    backend: Any = None,
    pipelined: bool = True,
    on_progress: Any = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> int:
    """Run one pod's shards; returns the exit code. A failure (a shard, or the run
    itself) is described to `on_failure(message, error)` first (module docstring)."""
    from sailvl.runtime.report import describe, report_failure

    fail = on_failure or (lambda message, error: report_failure(None, message, error))
    where = ["caption run"]  # the step under way, named in the report if it raises
    try:
        failed, failures = _run(cfg, backend, pipelined, on_progress, where)
    except Exception as exc:  # noqa: BLE001 - described, then the pod exits 1
        log.exception("caption run failed")
        fail(*describe(where[-1], exc))
        return 1
    if not failed:
        return 0
    message, error = describe(*(failures[0] if failures else (where[-1], RuntimeError(""))))
    if failed > 1:
        message = f"{failed} shards failed; first: {message}"
    fail(message, error)
    return 1


def _run(
    cfg: CaptionConfig, backend: Any, pipelined: bool, on_progress: Any, where: list[str]
) -> tuple[int, list[tuple[str, BaseException]]]:
    """`run_caption` without the report: (failed shards, the worker's `failures`);
    `where` gets each step as it starts."""
    from sailvl.caption.backends import make_backend
    from sailvl.caption.worker import CaptionWorker
    from sailvl.runtime.metrics import serve
    from sailvl.storage import open_store

    where.append(f"opening {cfg.input_uri} and {cfg.output_uri}")
    in_store, out_store = open_store(cfg.input_uri), open_store(cfg.output_uri)
    if cfg.metrics_port:
        try:
            serve(cfg.metrics_port)
        except OSError as exc:  # a busy port must not stop the captioning
            log.warning("metrics server on port %d not started: %s", cfg.metrics_port, exc)
    progress_key = f"_progress/pod-{cfg.shard_index}.json"

    def report(snap: dict[str, Any]) -> None:
        log.info("%s", json.dumps({"event": "caption_progress", **snap}, sort_keys=True))
        try:
            out_store.write_bytes(progress_key, json.dumps(snap, sort_keys=True).encode())
        except Exception as exc:  # noqa: BLE001 - progress is best effort
            log.warning("progress not written: %s", exc)
        if on_progress is not None:
            on_progress(snap)

    own = backend is None
    if own:
        where.append(f"{cfg.backend} backend loading model {cfg.model_uri}")
        backend = make_backend(cfg)
    try:
        where.append(f"listing the input shards of {cfg.input_uri}")
        worker = CaptionWorker(cfg, backend, in_store, out_store, on_progress=report)
        where.append(f"caption worker {cfg.shard_index} of {cfg.output_uri}")
        snap = worker.run() if pipelined else worker.run_sequential()
    finally:
        if own:
            backend.close()
    return int(snap["shards_failed"]), worker.failures


def caption_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sailvl caption")
    parser.add_argument("--config", required=True, help="job config file (YAML or JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_caption(CaptionConfig.from_file(args.config))


if __name__ == "__main__":
    raise SystemExit(caption_main())
