"""`sailvl caption --config FILE`: the CaptionJob pod entry point.

`caption_main(argv)` parses `--config`, builds `CaptionConfig`, opens the stores,
builds the backend (which fetches the model when it lives in object storage), starts
the metrics server, runs the pipelined worker and returns the process exit code (0: all assigned
shards committed; 1: some shard failed, so the Indexed Job retries this index).
Progress is logged as one JSON line per shard and written to
`<output>/_progress/pod-<index>.json` for the operator to aggregate into status.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from sailvl.caption.config import CaptionConfig

log = logging.getLogger("sailvl.caption")


def run_caption(
    cfg: CaptionConfig, *, backend: Any = None, pipelined: bool = True, on_progress: Any = None
) -> int:
    """Run one pod's shards; returns the exit code."""
    from sailvl.caption.backends import make_backend
    from sailvl.caption.worker import CaptionWorker
    from sailvl.runtime.metrics import serve
    from sailvl.storage import open_store

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
        backend = make_backend(cfg)
    try:
        worker = CaptionWorker(cfg, backend, in_store, out_store, on_progress=report)
        snap = worker.run() if pipelined else worker.run_sequential()
    finally:
        if own:
            backend.close()
    return 1 if snap["shards_failed"] else 0


def caption_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sailvl caption")
    parser.add_argument("--config", required=True, help="job config file (YAML or JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_caption(CaptionConfig.from_file(args.config))


if __name__ == "__main__":
    raise SystemExit(caption_main())
