"""Loader throughput: sailvl's StreamingReader vs MosaicML `streaming`, same samples,
same S3 server, same per-sample work, measured side by side in one run.

Per sample both loaders do: read from S3 (cold: nothing cached locally), decode the
image (PIL), tile it (`sailvl.data.tiling`, InternVL dynamic_preprocess, 448 px tiles,
max 8 + thumbnail) and tokenise the conversation (`sailvl.data.template` with the tiny
byte-level tokenizer). Two set-ups are timed:

- in-process: sailvl with its read-ahead and `threads` decode pool vs streaming's
  StreamingDataset iterated in the main thread (its own download threads);
- DataLoader: both wrapped in torch DataLoader(num_workers=2, batch_size=None).

Run: `python tests/bench/bench_loader.py [--samples N] [--rounds R]`. Prints samples/s
and ratios (sailvl / streaming); target >= 1.0x; writes benchmarks/results/loader.json.
The server is SeaweedFS (the run stops if it is not, unless SAILVL_TEST_S3=moto asks
for moto, which the result then records). Not a pass/fail test; the quick ratio test
in `make test` calls `measure` at a small size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from sailvl.data.dataset import WriterConfig  # noqa: E402
from sailvl.data.synthetic import SyntheticConfig, make_sample, write_synthetic  # noqa: E402
from tests.bench.results import spread, write_result  # noqa: E402
from tests.fixtures.s3server import assert_server_is_expected, start_s3_server  # noqa: E402

# HF fast tokenizers raise "Already borrowed" when one instance encodes in two threads
# at once: the reader's decode threads each get their own.
_LOCAL = threading.local()


def work(image_bytes: bytes, conversations: list[dict[str, str]]) -> int:
    """Decode, tile, tokenise; return the token count (so nothing is optimised away)."""
    from PIL import Image

    from sailvl.data.template import TemplateConfig, encode_conversation
    from sailvl.data.tiling import TilingConfig, tile_image

    if not hasattr(_LOCAL, "tok"):
        from sailvl.model.tokenizer import build_tiny_tokenizer

        _LOCAL.tok = build_tiny_tokenizer()
    img = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    tiles = tile_image(img, TilingConfig(max_tiles=8))
    enc = encode_conversation(_LOCAL.tok, conversations, [len(tiles)], TemplateConfig())
    return len(enc.input_ids)


def sailvl_transform(sample: dict[str, Any]) -> dict[str, Any]:
    return {"id": sample["id"], "tokens": work(sample["images"][0], sample["conversations"])}


class MosaicTransform:
    def __init__(self, remote: str, local: str) -> None:
        from streaming import StreamingDataset

        self.ds = StreamingDataset(
            remote=remote, local=local, shuffle=True, batch_size=1, shuffle_seed=1
        )

    def __iter__(self):  # type: ignore[no-untyped-def]
        for s in self.ds:
            yield {"id": s["id"], "tokens": work(s["image"], json.loads(s["conversations"]))}


def write_mds(samples: list[dict[str, Any]], local: str, remote_client: Any, bucket: str) -> None:
    from streaming import MDSWriter

    cols = {"id": "str", "image": "bytes", "caption": "str", "conversations": "str"}
    with MDSWriter(out=local, columns=cols, size_limit=1 << 20) as out:
        for s in samples:
            out.write(
                {
                    "id": s["id"],
                    "image": s["images"][0],
                    "caption": s["caption"],
                    "conversations": json.dumps(s["conversations"]),
                }
            )
    for name in os.listdir(local):
        remote_client.upload_file(os.path.join(local, name), bucket, f"mds/{name}")


def timed(label: str, it: Any, n: int) -> float:
    """Samples/s of one pass (every sample must arrive)."""
    t0 = time.perf_counter()
    count = tokens = 0
    for item in it:
        if "__skip__" in item:
            continue
        count += 1
        tokens += item["tokens"]
    dt = time.perf_counter() - t0
    assert count == n, f"{label}: {count} samples, expected {n}"
    print(f"  {label:<44} {n / dt:8.1f} samples/s  ({dt:.2f} s, {tokens} tokens)")
    return n / dt


def measure(
    server: Any, n: int, rounds: int, setups: tuple[str, ...] = ("in-process", "DataLoader")
) -> dict[str, dict[str, list[float]]]:
    """setup -> loader -> samples/s per round, both loaders on the same S3 data."""
    from streaming.base.util import clean_stale_shared_memory
    from torch.utils.data import DataLoader, IterableDataset

    from sailvl.data.reader import ReaderConfig, StreamingReader

    tmp = tempfile.mkdtemp(prefix="bench-loader-")
    env = server.env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        bucket = server.new_bucket("bench")
        cfg = SyntheticConfig(seed=11)
        write_synthetic(f"s3://{bucket}/sailvl", n, cfg, WriterConfig(max_samples_per_shard=200))
        write_mds(
            [make_sample(i, cfg) for i in range(n)], f"{tmp}/mds-src", server.client(), bucket
        )
        print(f"{n} synthetic samples ({server.kind} S3 at {server.endpoint}, {server.identity})")

        def ours(workers: int = 1, threads: int = 2) -> StreamingReader:
            # In DataLoader workers the processes already use the cores: one decode thread.
            rc = ReaderConfig(seed=1, epochs=1, num_workers=workers, threads=threads, prefetch=64)
            return StreamingReader([f"s3://{bucket}/sailvl"], rc, transform=sailvl_transform)

        work(make_sample(0, cfg)["images"][0], make_sample(0, cfg)["conversations"])  # warm imports

        class Wrap(IterableDataset):  # type: ignore[type-arg]
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def __iter__(self):  # type: ignore[no-untyped-def]
                return iter(self.inner)

        def loader(ds: Any) -> DataLoader:  # type: ignore[type-arg]
            return DataLoader(Wrap(ds), batch_size=None, num_workers=2, collate_fn=lambda x: x)

        def mosaic(tag: str) -> MosaicTransform:
            clean_stale_shared_memory()  # a fresh, cold local cache for every run
            return MosaicTransform(f"s3://{bucket}/mds", f"{tmp}/cache-{tag}")

        # Alternate the order each round (A B, B A, ...) so load drift on a shared
        # machine hits both loaders alike.
        makers = {
            "in-process": (lambda: ours(), lambda t: mosaic(t)),
            "DataLoader": (lambda: loader(ours(2, threads=1)), lambda t: loader(mosaic(t))),
        }
        out: dict[str, dict[str, list[float]]] = {}
        for name in setups:
            make_ours, make_mosaic = makers[name]
            got: dict[str, list[float]] = {"sailvl": [], "streaming": []}
            for r in range(rounds):
                runs = [
                    ("sailvl", make_ours),
                    ("streaming", lambda m=make_mosaic, t=f"{name}{r}": m(t)),  # type: ignore[misc]
                ]
                for label, make in runs if r % 2 == 0 else runs[::-1]:
                    got[label].append(timed(f"{name} {label} (round {r})", make(), n))
            out[name] = got
        return out
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    server = start_s3_server()
    try:
        assert_server_is_expected(server)  # SeaweedFS, unless SAILVL_TEST_S3=moto
        rates = measure(server, args.samples, args.rounds)
        kind, identity = server.kind, server.identity
    finally:
        server.stop()
    figures, ratios = {}, {}
    for name, got in rates.items():
        ratios[name] = [a / b for a, b in zip(got["sailvl"], got["streaming"], strict=True)]
        for label, values in got.items():
            figures[f"{name} {label}"] = spread(values, "samples/s")
        figures[f"{name} sailvl / streaming"] = spread(ratios[name], "x")
        r = spread(ratios[name])
        print(
            f"{name}: sailvl/streaming ratio median {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
        )
    write_result(
        "loader",
        title="Loader vs MosaicML streaming on S3 (decode + tile + tokenise)",
        inputs={"samples": args.samples, "rounds": args.rounds, "s3": f"{kind} ({identity})"},
        figures=figures,
        ratio={
            "name": "sailvl / streaming samples/s, in-process",
            "target": ">= 1.0x",
            **spread(ratios["in-process"]),
        },  # fmt: skip
        notes="DataLoader(2 workers) ratios are in the figures",
    )


if __name__ == "__main__":
    main()
