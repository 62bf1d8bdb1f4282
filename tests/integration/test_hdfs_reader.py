"""The dataset writer and the streaming reader on a real HDFS (MiniDFSCluster over
WebHDFS, tests/fixtures/hdfsserver.py): an epoch split over ranks and a mid-epoch resume,
as `test_s3_reader.py` does on S3, addressed as `hdfs://` the way jobs name it."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sailvl.data.dataset import Dataset, WriterConfig
from sailvl.data.reader import ReaderConfig, StreamingReader
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
