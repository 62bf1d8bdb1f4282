"""Which S3 server the S3 tests run against: SeaweedFS, found the way `make test` runs
pytest, and moto only when asked for by name (tests/fixtures/s3server.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.s3server import (
    S3Server,
    assert_server_is_expected,
    find_weed,
    resolve_kind,
)

ROOT = Path(__file__).parents[2]
PROBE = """
from tests.fixtures.s3server import start_s3_server
s = start_s3_server()
try:
    print(s.kind, s.proc.args[0], sep="\\n")
    print(s.client().list_buckets()["ResponseMetadata"]["HTTPHeaders"].get("server", ""))
finally:
    s.stop()
"""


def test_weed_is_found_when_the_venv_bin_is_not_on_path() -> None:
    """`make test` runs `.venv/bin/python -m pytest` with the system PATH: the fixture
    must still start SeaweedFS. Checked against the fixture before this change
    (`git show HEAD~:tests/fixtures/s3server.py`): it printed `moto`, so this failed."""
    env = {k: v for k, v in os.environ.items() if k != "SAILVL_TEST_S3"}
    env["PATH"] = "/usr/bin:/bin"
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    kind, exe, server = out.stdout.splitlines()[-3:]
    assert kind == "weed", out.stdout
    assert Path(exe) == Path(sys.executable).parent / "weed"
    assert server.startswith("SeaweedFS"), server


def test_weed_next_to_the_interpreter_wins_over_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", "")
    assert find_weed(beside=tmp_path) == str(fake)
    assert find_weed(beside=tmp_path / "nothing-here") is None


def test_moto_only_when_asked_for_by_name() -> None:
    assert resolve_kind(None, {}, "/x/weed") == ("weed", "/x/weed")
    assert resolve_kind(None, {"SAILVL_TEST_S3": "moto"}, "/x/weed")[0] == "moto"
    assert resolve_kind(None, {"SAILVL_TEST_S3": "moto"}, None)[0] == "moto"
    # No weed and no opt-in: an error that names the way out, never a quiet moto.
    with pytest.raises(RuntimeError, match="SAILVL_TEST_S3=moto"):
        resolve_kind(None, {}, None)
    with pytest.raises(ValueError, match="SAILVL_TEST_S3"):
        resolve_kind(None, {"SAILVL_TEST_S3": "minio"}, "/x/weed")


def test_the_session_server_is_the_one_expected(s3_server: S3Server) -> None:
    """SeaweedFS unless SAILVL_TEST_S3=moto, and its own Server header agrees."""
    assert_server_is_expected(s3_server)
    if "SAILVL_TEST_S3" not in os.environ:
        assert s3_server.identity.startswith("SeaweedFS"), s3_server.identity


def test_a_stopped_server_leaves_nothing_in_tmp() -> None:
    """weed writes its glog files and one Unix socket per component into /tmp
    (`seaweedfs-s3-grpc-<port>.sock`, ...): hundreds had piled up on the shared machine.
    The fixture sends the logs to the server's own folder and removes its sockets."""
    import glob
    import re

    from tests.fixtures.s3server import start_s3_server

    server = start_s3_server("weed")
    ports = {int(p) for p in re.findall(r"\.port=(\d+)", " ".join(server.proc.args))}
    ports |= {p + 10000 for p in ports}  # the gRPC ports

    def leftovers() -> list[str]:
        socks = [s for s in glob.glob("/tmp/seaweedfs-*.sock")
                 if int(re.findall(r"\d+", s)[-1]) in ports]  # fmt: skip
        return socks + glob.glob(f"/tmp/weed.*.{server.proc.pid}")

    assert [s for s in leftovers() if s.endswith(".sock")], "weed made no socket in /tmp"
    server.stop()
    assert leftovers() == []
