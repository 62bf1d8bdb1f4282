"""Captions/s of the pipelined caption worker against a plain sequential loop.

Both runs use the same backend (transformers, tiny random model on CPU, sampling so
captions are not empty), the same synthetic dataset and the same store; only the
driver differs: `CaptionWorker.run` (prefetch thread for read + decode + tiling, writer
thread for upload) against `CaptionWorker.run_sequential` (each shard read, generated,
written in turn). `--io-latency-ms` adds a fixed delay to every store read and write to
stand in for object-store round trips (0 = local disk as is).

    python tests/bench/bench_caption.py [--samples 48] [--per-shard 8] [--io-latency-ms 50]
                                         [--rounds 3]

Prints both rates and their ratio, measured side by side in this run (the two drivers
alternate their order each round), and writes benchmarks/results/caption.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from sailvl.caption.backends.hf import TransformersBackend  # noqa: E402
from sailvl.caption.config import CaptionConfig  # noqa: E402
from sailvl.caption.worker import CaptionWorker  # noqa: E402
from sailvl.data.dataset import WriterConfig  # noqa: E402
from sailvl.data.synthetic import write_synthetic  # noqa: E402
from sailvl.model.build import build_model  # noqa: E402
from sailvl.model.checkpoint import save_checkpoint  # noqa: E402
from sailvl.model.tokenizer import build_tiny_tokenizer  # noqa: E402
from sailvl.storage import open_store  # noqa: E402
from tests.bench.results import spread, write_result  # noqa: E402


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


def measure(
    samples: int,
    per_shard: int,
    batch_size: int = 4,
    max_new_tokens: int = 16,
    io_latency_ms: float = 50.0,
    rounds: int = 1,
    max_dynamic_patch: int = 4,
) -> dict[str, list[float]]:
    """Captions/s of each driver, one value per round (the quick test calls this)."""
    root = tempfile.mkdtemp(prefix="bench-caption-")
    args = (samples, per_shard, batch_size, max_new_tokens, io_latency_ms, rounds)
    try:
        return _measure(root, *args, max_dynamic_patch)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(
    root: str,
    samples: int,
    per_shard: int,
    batch_size: int,
    max_new_tokens: int,
    io_latency_ms: float,
    rounds: int,
    max_dynamic_patch: int,
) -> dict[str, list[float]]:
    save_checkpoint(build_model("tiny"), build_tiny_tokenizer(), f"file://{root}/model")
    write_synthetic(
        f"file://{root}/in", samples, writer=WriterConfig(max_samples_per_shard=per_shard)
    )
    base = {
        "input_uri": f"file://{root}/in",
        "model_uri": f"file://{root}/model",
        "engine": {
            "batch_size": batch_size,
            "max_dynamic_patch": max_dynamic_patch,
            "device": "cpu",
        },
        "generation": {"max_new_tokens": max_new_tokens, "temperature": 1.0},
    }
    cfg0 = CaptionConfig.from_dict({**base, "output_uri": f"file://{root}/warm"})
    backend = TransformersBackend(cfg0.model_uri, cfg0.engine, cfg0.generation)
    lat = io_latency_ms / 1000
    # Warm-up (first generate call pays one-off costs), not timed.
    CaptionWorker(
        cfg0, backend, open_store(cfg0.input_uri), open_store(cfg0.output_uri)
    ).run_sequential()
    rates: dict[str, list[float]] = {"sequential": [], "pipelined": []}
    for r in range(rounds):
        order = ("sequential", "pipelined") if r % 2 == 0 else ("pipelined", "sequential")
        for mode in order:
            cfg = CaptionConfig.from_dict({**base, "output_uri": f"file://{root}/out-{mode}-{r}"})
            w = CaptionWorker(
                cfg,
                backend,
                SlowStore(open_store(cfg.input_uri), lat),
                SlowStore(open_store(cfg.output_uri), lat),
            )
            t0 = time.perf_counter()
            snap = w.run_sequential() if mode == "sequential" else w.run()
            dt = time.perf_counter() - t0
            rates[mode].append(snap["processed"] / dt)
            print(
                f"round {r} {mode:>10}: {snap['processed']} samples in {dt:.2f}s = "
                f"{rates[mode][-1]:.2f} captions/s (kept {snap['samples']})"
            )
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--per-shard", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--io-latency-ms", type=float, default=50.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-dynamic-patch", type=int, default=4)
    args = ap.parse_args()
    rates = measure(
        args.samples,
        args.per_shard,
        args.batch_size,
        args.max_new_tokens,
        args.io_latency_ms,
        args.rounds,
        args.max_dynamic_patch,
    )
    ratios = [p / q for p, q in zip(rates["pipelined"], rates["sequential"], strict=True)]
    ratio = spread(ratios)
    print(
        f"pipelined / sequential = median {ratio['median']:.2f}x "
        f"(min {ratio['min']:.2f}, max {ratio['max']:.2f}; "
        f"io latency {args.io_latency_ms:.0f} ms per object)"
    )
    write_result(
        "caption",
        title="Pipelined vs sequential captioning (tiny model, CPU)",
        inputs={
            "samples": args.samples,
            "per_shard": args.per_shard,
            "batch_size": args.batch_size,
            "max_new_tokens": args.max_new_tokens,
            "io_latency_ms": args.io_latency_ms,
            "rounds": args.rounds,
            "max_dynamic_patch": args.max_dynamic_patch,
        },
        figures={k: spread(v, "captions/s") for k, v in rates.items()},
        ratio={"name": "pipelined / sequential captions/s", "target": "> 1x", **ratio},
        notes="store latency is simulated (a sleep per object read and write)",
    )


if __name__ == "__main__":
    main()
