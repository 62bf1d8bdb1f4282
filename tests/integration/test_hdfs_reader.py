"""The dataset writer and the streaming reader on a real HDFS (MiniDFSCluster over
WebHDFS, tests/fixtures/hdfsserver.py): an epoch split over ranks and a mid-epoch resume,
the same checks `test_s3_reader.py` runs on S3 (tests/fixtures/storage_contract.py),
addressed as `hdfs://` the way jobs name it."""

from __future__ import annotations

import pytest

from sailvl.data.reader import ReaderConfig
from tests.fixtures import storage_contract as contract
from tests.fixtures.hdfsserver import HdfsServer

pytestmark = pytest.mark.timeout(600)


def test_reader_epoch_and_resume_on_hdfs(hdfs_env: str, hdfs_server: HdfsServer) -> None:
    uri = hdfs_server.hdfs_uri(f"{hdfs_env}/synth")
    contract.write_dataset(uri)
    contract.check_dataset(uri)
    contract.check_epoch_and_resume(uri)


def test_torch_dataloader_workers_resume_on_webhdfs(hdfs_env: str, hdfs_server: HdfsServer) -> None:
    """Two DataLoader worker processes stream from WebHDFS; a resume from the state after
    item 40 continues with exactly the items the uninterrupted run had next."""
    uri = hdfs_server.webhdfs_uri(f"{hdfs_env}/synth")
    contract.write_dataset(uri, samples=60, max_size=64, per_shard=20)
    config = ReaderConfig(seed=3, num_workers=2, block_size=10)
    contract.check_dataloader_resume(uri, samples=60, config=config, total=90, resume_after=39)
