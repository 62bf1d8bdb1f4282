"""The caption worker on a local store with a fake backend: pipeline, failures, reruns."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from sailvl.caption.config import CaptionConfig
from sailvl.caption.worker import CaptionWorker
from sailvl.data.dataset import Dataset, DatasetWriter, WriterConfig
from sailvl.storage import open_store


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


class FakeBackend:
    """Captions from the image colour; `fail_calls` makes the first calls raise."""

    name = "fake"

    def __init__(self, fail_calls: int = 0, always_fail_on: str | None = None) -> None:
        self.fail_calls = fail_calls
        self.always_fail_on = always_fail_on
        self.calls = 0
        self.batches: list[int] = []

    def prepare(self, prompt: str, image: Any, raw: bytes) -> Any:
        return (prompt, image.getpixel((0, 0)))

    def generate(self, batch: list[Any]) -> list[str]:
        self.calls += 1
        if self.calls <= self.fail_calls:
            raise RuntimeError("engine hiccup")
        self.batches.append(len(batch))
        out = []
        for prompt, (r, g, b) in batch:
            if self.always_fail_on and self.always_fail_on in prompt:
                raise RuntimeError("poisoned")
            out.append("" if r == 1 else f"A picture coloured {r} {g} {b}, prompt {len(prompt)}.")
        return out

    def close(self) -> None:
        pass


def make_dataset(uri: str, n: int, per_shard: int) -> list[str]:
    ids = []
    with DatasetWriter(uri, WriterConfig(max_samples_per_shard=per_shard)) as w:
        for i in range(n):
            sid = f"s{i:04d}"
            ids.append(sid)
            if i % 7 == 3:
                images = [b"not an image"]
            elif i % 11 == 5:
                images = [png((1, 2, 3))]  # backend returns an empty caption
            else:
                images = [png((i % 250 + 5, 7, 9))]
            w.write(
                {
                    "id": sid,
                    "images": images,
                    "alt_text": "a cat" if i % 2 else "",
                    "lang": "zh" if i % 3 == 0 else "en",
                }
            )
    return ids


def config(tmp_path: Any, **kw: Any) -> CaptionConfig:
    base = dict(
        input_uri=f"file://{tmp_path}/in",
        output_uri=f"file://{tmp_path}/out",
        model_uri="file:///models/fake",
        shard_retries=1,
    )
    base.update(kw)
    cfg = CaptionConfig.from_dict(base)
    cfg.engine.batch_size = 3
    cfg.prompt.lang = "auto"
    return cfg


def output_rows(out_uri: str) -> list[dict[str, Any]]:
    store = open_store(out_uri)
    rows = []
    for key in store.list(""):
        if key.endswith(".parquet"):
            rows += pq.read_table(io.BytesIO(store.read_bytes(key))).to_pylist()
    return rows


def run(cfg: CaptionConfig, backend: FakeBackend, pipelined: bool = True) -> dict[str, Any]:
    snaps: list[dict[str, Any]] = []
    w = CaptionWorker(
        cfg,
        backend,
        open_store(cfg.input_uri),
        open_store(cfg.output_uri),
        on_progress=snaps.append,
    )
    snap = w.run() if pipelined else w.run_sequential()
    assert snaps and snaps[-1] == snap or snaps[-1]["shards_done"] == snap["shards_done"]
    return snap


@pytest.mark.parametrize("pipelined", [True, False])
def test_every_id_once_with_failures_marked(tmp_path: Any, pipelined: bool) -> None:
    ids = make_dataset(f"file://{tmp_path}/in", 30, per_shard=8)
    cfg = config(tmp_path)
    snap = run(cfg, FakeBackend(), pipelined)
    rows = output_rows(cfg.output_uri)
    assert sorted(r["id"] for r in rows) == ids
    status = Counter(r["caption_status"] for r in rows)
    broken = sum(1 for i in range(30) if i % 7 == 3)
    empty = sum(1 for i in range(30) if i % 11 == 5 and i % 7 != 3)
    assert status == {"ok": 30 - broken - empty, "broken_image": broken, "empty_caption": empty}
    assert snap["failures"] == {"broken_image": broken, "empty_caption": empty}
    assert snap["samples"] == 30 - broken - empty and snap["shards_done"] == 4
    by_id = {r["id"]: r for r in rows}
    assert by_id["s0001"]["caption_prompt_kind"] == "recaption"
    assert by_id["s0000"]["caption_prompt_kind"] == "detail"
    assert by_id["s0003"]["caption"] == "" and by_id["s0000"]["caption"].startswith("A picture")
    assert {r["caption_model"] for r in rows} == {"file:///models/fake"}
    # The output is itself a readable sailvl dataset.
    ds = Dataset.open(cfg.output_uri)
    assert len(ds) == 30 and [s.path for s in ds.shards] == sorted(s.path for s in ds.shards)


def test_drop_mode_leaves_failures_out(tmp_path: Any) -> None:
    make_dataset(f"file://{tmp_path}/in", 20, per_shard=20)
    cfg = config(tmp_path, filter={"failed_rows": "drop"})
    run(cfg, FakeBackend())
    rows = output_rows(cfg.output_uri)
    assert rows and all(r["caption_status"] == "ok" and r["caption"] for r in rows)
    assert len(rows) == 20 - 3 - 2  # 3 broken (3, 10, 17), 2 empty (5, 16)


def test_rerun_skips_committed_and_sharding_splits_work(tmp_path: Any) -> None:
    ids = make_dataset(f"file://{tmp_path}/in", 24, per_shard=4)  # 6 shards
    snaps = []
    for k in range(3):
        cfg = config(tmp_path, shard_index=k, shard_count=3, assignment="static")
        snaps.append(run(cfg, FakeBackend()))
    assert [s["shards_total"] for s in snaps] == [2, 2, 2]
    assert [s.get("manifest_written") for s in snaps] == [False, False, True]
    backend = FakeBackend()
    again = run(config(tmp_path, shard_index=1, shard_count=3, assignment="static"), backend)
    assert again["shards_skipped"] == 2 and backend.calls == 0
    assert sorted(r["id"] for r in output_rows(cfg.output_uri)) == ids


def test_transient_engine_error_is_retried(tmp_path: Any) -> None:
    make_dataset(f"file://{tmp_path}/in", 8, per_shard=8)
    cfg = config(tmp_path)
    backend = FakeBackend(fail_calls=1)
    snap = run(cfg, backend)
    assert snap["shards_failed"] == 0 and len(output_rows(cfg.output_uri)) == 8


def test_persistent_failure_fails_only_that_shard(tmp_path: Any) -> None:
    make_dataset(f"file://{tmp_path}/in", 12, per_shard=4)
    cfg = config(tmp_path, prompt={"use_alt_text": True, "lang": "en"})
    # Alt-text prompts quote the alt-text; shard 0 has ids 0..3 whose odd rows have it,
    # so poison one shard by its content instead: fail on every Chinese prompt.
    backend = FakeBackend(always_fail_on="请")
    snap = run(cfg, backend)
    # lang=auto: rows 0, 3, 6, 9 are Chinese -> every shard has one -> all fail.
    assert snap["shards_failed"] == 3 and not output_rows(cfg.output_uri)
    assert "manifest_written" not in snap
    from sailvl.caption.cli import run_caption

    assert run_caption(cfg, backend=FakeBackend()) == 0
    assert len(output_rows(cfg.output_uri)) == 12
    progress = json.loads(open_store(cfg.output_uri).read_bytes("_progress/pod-0.json"))
    assert progress["shards_done"] == 3


def test_batches_respect_batch_size(tmp_path: Any) -> None:
    make_dataset(f"file://{tmp_path}/in", 10, per_shard=10)
    backend = FakeBackend()
    run(config(tmp_path), backend)
    assert max(backend.batches) == 3 and sum(backend.batches) == 10 - 1  # row 3 is broken
