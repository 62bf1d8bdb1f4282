"""The dataset writer, synthetic generator and streaming reader against a real S3
server, including a real torch DataLoader with worker processes and a mid-epoch resume."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sailvl.data.dataset import Dataset, WriterConfig
from sailvl.data.reader import ReaderConfig, StreamingReader, drop_skips, state_after
from sailvl.data.synthetic import SyntheticConfig, write_synthetic
from tests.fixtures.s3server import S3Server, assert_server_is_expected


def decode(sample: dict[str, Any]) -> dict[str, Any]:
    from PIL import Image

    img = Image.open(io.BytesIO(sample["images"][0])).convert("RGB")
    return {"id": sample["id"], "size": img.size}


@pytest.fixture
def s3_dataset(s3_env: str, s3_server: S3Server) -> str:
    assert_server_is_expected(s3_server)  # SeaweedFS unless SAILVL_TEST_S3=moto
    uri = f"s3://{s3_env}/synth"
    cfg = SyntheticConfig(seed=7, max_size=96)
    write_synthetic(uri, 120, cfg, WriterConfig(max_samples_per_shard=25))
    return uri


def test_synthetic_dataset_on_s3_validates(s3_dataset: str) -> None:
    ds = Dataset.open(s3_dataset)
    ds.validate(deep=True)
    assert len(ds) == 120 and [s.samples for s in ds.shards] == [25, 25, 25, 25, 20]


def test_reader_epoch_and_resume_on_s3(s3_dataset: str) -> None:
    cfg = ReaderConfig(seed=1, world_size=2, rank=0, num_workers=2, epochs=2, block_size=30)
    full = [it["id"] for it in StreamingReader([s3_dataset], cfg, transform=decode)]
    other = [
        it["id"]
        for it in StreamingReader(
            [s3_dataset],
            ReaderConfig(seed=1, world_size=2, rank=1, num_workers=2, epochs=2, block_size=30),
            transform=decode,
        )
    ]
    assert len(full) + len(other) == 240
    assert sorted(full[:60] + other[:60]) == sorted(f"synthetic-7-{i:08d}" for i in range(120))
    r = StreamingReader([s3_dataset], cfg, transform=decode)
    head = [it["id"] for _, it in zip(range(77), r, strict=False)]
    state = r.state_dict()
    r2 = StreamingReader([s3_dataset], cfg, transform=decode)
    r2.load_state_dict(state)
    assert head + [it["id"] for it in r2] == full


def test_torch_dataloader_workers_resume_on_s3(s3_dataset: str) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset

    class DS(IterableDataset):  # type: ignore[type-arg]
        def __init__(self, state: dict[str, Any] | None) -> None:
            self.reader = StreamingReader(
                [s3_dataset], ReaderConfig(seed=3, num_workers=2, block_size=20, prefetch=4)
            )
            if state:
                self.reader.load_state_dict(state)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self.reader)

    def run(state: dict[str, Any] | None, n: int) -> list[dict[str, Any]]:
        loader = DataLoader(DS(state), batch_size=None, num_workers=2, collate_fn=lambda x: x)
        out = []
        for item in drop_skips(loader):
            out.append(item)
            if len(out) == n:
                break
        return out

    full = run(None, 150)
    assert [it["__pos__"] for it in full] == list(range(150))  # round-robin, in order
    ids = [it["id"] for it in full]
    assert sorted(ids[:120]) == sorted(f"synthetic-7-{i:08d}" for i in range(120))
    resumed = run(state_after(full[69]), 80)
    assert ids[:70] + [it["id"] for it in resumed] == ids
    del torch
