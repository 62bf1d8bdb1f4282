"""`sailvl data import` from and to a real HDFS (MiniDFSCluster, tests/fixtures/hdfsserver.py).

A LLaVA folder (annotation JSON + images, broken rows of every reason included) is
uploaded to HDFS and imported `hdfs://` -> `hdfs://`: the importer reads the JSON and
the images through the storage layer, and the writer commits shards and manifest with
the atomic rename. The output is checked like the local one (`check_import`: ids,
byte-identical images, conversations, rejects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sailvl.cli import main
from sailvl.storage import open_store
from tests.fixtures.hdfsserver import HdfsServer
from tests.unit.test_import_fixtures import check_import, write_llava

pytestmark = pytest.mark.timeout(600)


def test_import_llava_from_and_to_hdfs(
    hdfs_env: str, hdfs_server: HdfsServer, tmp_path: Path
) -> None:
    _, expected = write_llava(tmp_path)
    src = open_store(hdfs_server.hdfs_uri(f"{hdfs_env}/in"))
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            src.write_bytes(path.relative_to(tmp_path).as_posix(), path.read_bytes())
    out = hdfs_server.hdfs_uri(f"{hdfs_env}/out")
    argv = ["data", "import", f"{src.uri}/llava.json", out, "--max-reject-ratio", "1",
            "--no-progress", "--rows-per-shard", "4"]  # fmt: skip
    assert main(argv) == 0
    info = check_import(out, expected)
    assert info["format"] == "llava"
    # A rerun skips the committed shards and leaves the same dataset.
    before = {k: open_store(out).read_bytes(k) for k in open_store(out).list()}
    assert main(argv) == 0
    assert {k: open_store(out).read_bytes(k) for k in open_store(out).list()} == before
