"""The dataset writer and the streaming reader on a real HDFS (MiniDFSCluster over
WebHDFS, tests/fixtures/hdfsserver.py): an epoch split over ranks and a mid-epoch resume,
as `test_s3_reader.py` does on S3, addressed as `hdfs://` the way jobs name it."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sailvl.data.dataset import Dataset, WriterConfig
from sailvl.data.reader import ReaderConfig, StreamingReader, drop_skips, state_after
from sailvl.data.synthetic import SyntheticConfig, write_synthetic
from tests.fixtures.hdfsserver import HdfsServer

pytestmark = pytest.mark.timeout(600)


def decode(sample: dict[str, Any]) -> dict[str, Any]:
    from PIL import Image

    img = Image.open(io.BytesIO(sample["images"][0])).convert("RGB")
    return {"id": sample["id"], "size": img.size}


def test_reader_epoch_and_resume_on_hdfs(hdfs_env: str, hdfs_server: HdfsServer) -> None:
    uri = hdfs_server.hdfs_uri(f"{hdfs_env}/synth")
    write_synthetic(
        uri, 120, SyntheticConfig(seed=7, max_size=96), WriterConfig(max_samples_per_shard=25)
    )
    ds = Dataset.open(uri)
    ds.validate(deep=True)
    assert len(ds) == 120 and [s.samples for s in ds.shards] == [25, 25, 25, 25, 20]

    def cfg(rank: int) -> ReaderConfig:
        return ReaderConfig(seed=1, world_size=2, rank=rank, num_workers=2, epochs=2, block_size=30)

    full = [it["id"] for it in StreamingReader([uri], cfg(0), transform=decode)]
    other = [it["id"] for it in StreamingReader([uri], cfg(1), transform=decode)]
    assert len(full) + len(other) == 240
    assert sorted(full[:60] + other[:60]) == sorted(f"synthetic-7-{i:08d}" for i in range(120))
    r = StreamingReader([uri], cfg(0), transform=decode)
    head = [it["id"] for _, it in zip(range(77), r, strict=False)]
    state = r.state_dict()
    r2 = StreamingReader([uri], cfg(0), transform=decode)
    r2.load_state_dict(state)
    assert head + [it["id"] for it in r2] == full


def test_torch_dataloader_workers_resume_on_webhdfs(hdfs_env: str, hdfs_server: HdfsServer) -> None:
    """Two DataLoader worker processes stream from WebHDFS; a resume from the state after
    item 70 continues with exactly the items the uninterrupted run had next."""
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset

    uri = hdfs_server.webhdfs_uri(f"{hdfs_env}/synth")
    write_synthetic(
        uri, 60, SyntheticConfig(seed=7, max_size=64), WriterConfig(max_samples_per_shard=20)
    )

    class DS(IterableDataset):  # type: ignore[type-arg]
        def __init__(self, state: dict[str, Any] | None) -> None:
            self.reader = StreamingReader([uri], ReaderConfig(seed=3, num_workers=2, block_size=10))
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

    full = run(None, 90)
    ids = [it["id"] for it in full]
    assert sorted(ids[:60]) == sorted(f"synthetic-7-{i:08d}" for i in range(60))
    resumed = run(state_after(full[39]), 50)
    assert ids[:40] + [it["id"] for it in resumed] == ids
