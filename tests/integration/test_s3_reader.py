"""The dataset writer, synthetic generator and streaming reader against a real S3
server, including a real torch DataLoader with worker processes and a mid-epoch resume
(the checks live in tests/fixtures/storage_contract.py; HDFS runs them too)."""

from __future__ import annotations

import pytest

from sailvl.data.reader import ReaderConfig
from tests.fixtures import storage_contract as contract
from tests.fixtures.s3server import S3Server, assert_server_is_expected


@pytest.fixture
def s3_dataset(s3_env: str, s3_server: S3Server) -> str:
    assert_server_is_expected(s3_server)  # SeaweedFS unless SAILVL_TEST_S3=moto
    uri = f"s3://{s3_env}/synth"
    contract.write_dataset(uri)
    return uri


def test_synthetic_dataset_on_s3_validates(s3_dataset: str) -> None:
    contract.check_dataset(s3_dataset)


def test_reader_epoch_and_resume_on_s3(s3_dataset: str) -> None:
    contract.check_epoch_and_resume(s3_dataset)


def test_torch_dataloader_workers_resume_on_s3(s3_dataset: str) -> None:
    config = ReaderConfig(seed=3, num_workers=2, block_size=20, prefetch=4)
    contract.check_dataloader_resume(
        s3_dataset, samples=120, config=config, total=150, resume_after=69
    )
