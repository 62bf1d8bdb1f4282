"""`sailvl data import` with input and output on the real S3 server (SeaweedFS, or
moto when its binary is missing; tests/fixtures/s3server.py).

Each format's fixture is uploaded to a bucket and imported from `s3://` to `s3://`:
the JSON and tar readers stream the objects (no seeking), the Parquet reader spools
its object to a local temporary file, and images are fetched through the storage
layer relative to an `s3://` image root. The outputs are checked like the local ones
(`check_import`: ids, image bytes, conversations, rejects).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sailvl.cli import main
from sailvl.storage import open_store
from tests.unit.test_import_fixtures import (
    check_import,
    write_hfparquet,
    write_internvl,
    write_llava,
    write_webdataset,
)

pytestmark = pytest.mark.timeout(300)


def upload(local: Path, uri: str) -> None:
    store = open_store(uri)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            store.write_bytes(path.relative_to(local).as_posix(), path.read_bytes())


def test_import_every_format_from_and_to_s3(s3_env: str, tmp_path: Path) -> None:
    bucket = f"s3://{s3_env}"
    cases = {
        "llava": (write_llava, "llava.json"),
        "internvl": (write_internvl, "meta.json"),
        "webdataset": (lambda p: write_webdataset(p, shards=2), ""),
        "hfparquet": (write_hfparquet, ""),
    }
    for fmt, (write, name) in cases.items():
        local = tmp_path / fmt
        local.mkdir()
        _, exp = write(local)
        upload(local, f"{bucket}/in/{fmt}")
        src = f"{bucket}/in/{fmt}" + (f"/{name}" if name else "")
        out = f"{bucket}/out/{fmt}"
        argv = ["data", "import", src, out, "--max-reject-ratio", "1", "--no-progress",
                "--rows-per-shard", "4"]  # fmt: skip
        assert main(argv + (["--workers", "2"] if fmt == "webdataset" else [])) == 0, fmt
        info = check_import(out, exp)
        assert info["format"] == fmt
