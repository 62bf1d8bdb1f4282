"""Captions/s of the pipelined caption worker against a plain sequential loop.

Both runs use the same backend (transformers, tiny random model on CPU, sampling so
captions are not empty), the same synthetic dataset and the same store; only the
driver differs: `CaptionWorker.run` (prefetch thread for read + decode + tiling, writer
thread for upload) against `CaptionWorker.run_sequential` (each shard read, generated,
written in turn). `--io-latency-ms` adds a fixed delay to every store read and write to
stand in for object-store round trips (0 = local disk as is).

    python tests/bench/bench_caption.py [--samples 48] [--per-shard 8] [--io-latency-ms 50]

Prints both rates and their ratio, measured side by side in this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from sailvl.caption.backends.hf import TransformersBackend
from sailvl.caption.config import CaptionConfig
from sailvl.caption.worker import CaptionWorker
from sailvl.data.dataset import WriterConfig
from sailvl.data.synthetic import write_synthetic
from sailvl.model.build import build_model
from sailvl.model.checkpoint import save_checkpoint
from sailvl.model.tokenizer import build_tiny_tokenizer
from sailvl.storage import open_store


class SlowStore:
    """Wraps a store, sleeping `latency` seconds per read and write."""

    def __init__(self, inner: Any, latency: float) -> None:
        self.inner, self.latency, self.uri = inner, latency, inner.uri

    def read_bytes(self, key: str) -> bytes:
        time.sleep(self.latency)
        return bytes(self.inner.read_bytes(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        time.sleep(self.latency)
        self.inner.write_bytes(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--per-shard", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--io-latency-ms", type=float, default=50.0)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-caption-")
    save_checkpoint(build_model("tiny"), build_tiny_tokenizer(), f"file://{root}/model")
    write_synthetic(
        f"file://{root}/in", args.samples, writer=WriterConfig(max_samples_per_shard=args.per_shard)
    )
    base = {
        "input_uri": f"file://{root}/in",
        "model_uri": f"file://{root}/model",
        "engine": {"batch_size": args.batch_size, "max_dynamic_patch": 4, "device": "cpu"},
        "generation": {"max_new_tokens": args.max_new_tokens, "temperature": 1.0},
    }
    cfg0 = CaptionConfig.from_dict({**base, "output_uri": f"file://{root}/warm"})
    backend = TransformersBackend(cfg0.model_uri, cfg0.engine, cfg0.generation)
    lat = args.io_latency_ms / 1000
    # Warm-up (first generate call pays one-off costs), not timed.
    CaptionWorker(
        cfg0, backend, open_store(cfg0.input_uri), open_store(cfg0.output_uri)
    ).run_sequential()
    rates = {}
    for mode in ("sequential", "pipelined"):
        cfg = CaptionConfig.from_dict({**base, "output_uri": f"file://{root}/out-{mode}"})
        w = CaptionWorker(
            cfg,
            backend,
            SlowStore(open_store(cfg.input_uri), lat),
            SlowStore(open_store(cfg.output_uri), lat),
        )
        t0 = time.perf_counter()
        snap = w.run_sequential() if mode == "sequential" else w.run()
        dt = time.perf_counter() - t0
        rates[mode] = snap["processed"] / dt
        print(
            f"{mode:>10}: {snap['processed']} samples in {dt:.2f}s = "
            f"{rates[mode]:.2f} captions/s (kept {snap['samples']})"
        )
    print(
        f"pipelined / sequential = {rates['pipelined'] / rates['sequential']:.2f}x "
        f"(io latency {args.io_latency_ms:.0f} ms per object)"
    )


if __name__ == "__main__":
    main()
