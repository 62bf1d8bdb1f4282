"""`sailvl data import` on SeaweedFS through injected faults (issue 17 section 3).

The LLaVA input (annotation files and their images) is uploaded straight to SeaweedFS;
the import then reads and writes only through `tests.fixtures.faultproxy` (500, 503
SlowDown, stalls past the 1 s read timeout, resets after the server acted, truncated
bodies). It runs in this process (`sailvl.cli.main`, one worker process, fetch threads)
as a DataJob pod runs it, so its retries land in the process-wide registry that the
pod's /metrics serves; the test serves that registry itself and scrapes it.

- 5 %: the import finishes; read back from SeaweedFS directly (not through the proxy):
  every input id exactly once with its own image bytes, the dataset validates deep
  (sizes, SHA-256, rows), each part's shards match its manifest, no object lies
  outside the import's layout, and `sailvl_storage_retries_total` as scraped grew by
  at least the faults injected.
- 100 % from the start: exit 1 with an error naming the object and the attempts, within
  a bounded time, and nothing at the output but (at most) a whole plan.
- 100 % from the middle (the proxy turns to 100 % once parts are committed): the
  import fails naming the object, in bounded time (no further file is started once
  the store gave up), leaves no manifest and only committed parts whose shards match
  their listed sizes and digests; the rerun without faults resumes and finishes with
  every id exactly once.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sailvl.cli import main
from sailvl.data.dataset import Dataset
from sailvl.data.importers.inputs import store_at
from sailvl.data.manifest import Manifest
from sailvl.storage.s3 import S3Store
from tests.fixtures.faultproxy import FAULTS, fault_proxy
from tests.fixtures.s3server import S3Server, assert_server_is_expected
from tests.integration.test_s3_faults import READ_TIMEOUT_S, sha, upstream_objects
from tests.unit.test_import_fixtures import image

pytestmark = pytest.mark.timeout(300)
FILES, ROWS, IMAGES, PER_PART = 6, 40, 12, 10
# The import's own layout: nothing else may appear under the output.
LAYOUT = re.compile(
    r"^out/(_import/plan\.json|manifest\.json|rejects\.jsonl"
    r"|parts/\d{5}-\d{5}/(manifest\.json|part-\d{5}\.parquet))$"
)


def write_inputs(server: S3Server, bucket: str) -> dict[str, bytes]:
    """LLaVA files in/fNN.json with images in/img/K.png on SeaweedFS; id -> image bytes."""
    client = server.client()
    pool = [image(k, size=32) for k in range(IMAGES)]
    for k, data in enumerate(pool):
        client.put_object(Bucket=bucket, Key=f"in/img/{k}.png", Body=data)
    want = {}
    for f in range(FILES):
        doc = []
        for i in range(ROWS):
            sid, k = f"f{f}-r{i:03d}", (f * ROWS + i) % IMAGES
            doc.append({"id": sid, "image": f"img/{k}.png", "conversations": [
                {"from": "human", "value": f"<image>\nRow {i}?"},
                {"from": "gpt", "value": f"Answer {i}."}]})  # fmt: skip
            want[sid] = pool[k]
        client.put_object(Bucket=bucket, Key=f"in/f{f}.json", Body=json.dumps(doc).encode())
    return want


def argv(bucket: str, workers: int = 1) -> list[str]:
    return ["data", "import", f"s3://{bucket}/in", f"s3://{bucket}/out", "--format", "llava",
            "--rows-per-shard", str(PER_PART), "--max-reject-ratio", "0", "--threads", "4",
            "--workers", str(workers), "--no-progress"]  # fmt: skip


@pytest.fixture
def via(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`via(endpoint)` points sailvl.storage at `endpoint` (the proxy or SeaweedFS).
    The importer keeps one store per URI and process (`store_at`), built with the
    endpoint of the moment, so that cache is emptied on every switch."""

    def point(endpoint: str) -> None:
        for name in ("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"):
            monkeypatch.setenv(name, endpoint)
        monkeypatch.setenv("SAILVL_S3_READ_TIMEOUT", str(READ_TIMEOUT_S))
        monkeypatch.setenv("SAILVL_S3_CONNECT_TIMEOUT", str(READ_TIMEOUT_S))
        store_at.cache_clear()

    yield point
    store_at.cache_clear()


def scrape_retries(port: int) -> dict[tuple[str, str], float]:
    """sailvl_storage_retries_total by (op, reason), as served on /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            if s.name == "sailvl_storage_retries_total":
                out[(s.labels["op"], s.labels["reason"])] = s.value
    return out


def check_output(server: S3Server, bucket: str, want: dict[str, bytes]) -> None:
    """Read straight from SeaweedFS: every id once with its image; nothing corrupt."""
    out = S3Store(f"s3://{bucket}/out", endpoint_url=server.endpoint)
    ds = Dataset.open(out)
    ds.validate(deep=True)  # every listed shard: present, its size and SHA-256, its rows
    got: dict[str, bytes] = {}
    for i in range(len(ds.shards)):
        for row in ds.read_shard(i).rows:
            assert row is not None and row["id"] not in got, row and row["id"]
            got[row["id"]] = row["images"][0]
    assert sorted(got) == sorted(want)
    assert all(got[k] == v for k, v in want.items())
    check_parts(server, bucket)


def check_parts(server: S3Server, bucket: str) -> dict[str, bytes]:
    """No object outside the layout; each committed part's manifest lists exactly the
    shards beside it, each with its size and SHA-256 as stored (a shard without its
    part manifest is uncommitted: invisible, rewritten by a rerun). Returns out/."""
    objects = {k: v for k, v in upstream_objects(server, bucket).items() if k.startswith("out/")}
    assert not [k for k in objects if not LAYOUT.match(k)], sorted(objects)
    parts = {k.rsplit("/", 1)[0] for k in objects if k.startswith("out/parts/")}
    for part in sorted(parts):
        if f"{part}/manifest.json" not in objects:
            continue
        manifest = Manifest.from_json(objects[f"{part}/manifest.json"])
        listed = {f"{part}/{s.path}": (s.bytes, s.sha256) for s in manifest.shards}
        stored = {k: (len(v), sha(v)) for k, v in objects.items() if k.startswith(f"{part}/part-")}
        assert stored == listed, part
    return objects


def test_import_under_5pct_faults(s3_env: str, s3_server: S3Server, via: Any) -> None:
    from sailvl.runtime.metrics import serve

    assert_server_is_expected(s3_server)
    want = write_inputs(s3_server, s3_env)
    metrics = serve(0, addr="127.0.0.1")  # the registry a DataJob pod serves
    try:
        before = scrape_retries(metrics.port)
        with fault_proxy(s3_server.endpoint, rate=0.05, seed=15, stall_s=3.0) as proxy:
            via(proxy.endpoint)
            t0 = time.monotonic()
            assert main(argv(s3_env)) == 0
            took = time.monotonic() - t0
            injected, requests = dict(proxy.injected), proxy.requests
        after = scrape_retries(metrics.port)
    finally:
        metrics.close()
    print(f"import at 5 %: {requests} requests, faults {injected}, {took:.1f} s")
    assert set(injected) == set(FAULTS), injected  # every kind fired
    grown = {k: v - before.get(k, 0.0) for k, v in after.items() if v > before.get(k, 0.0)}
    assert sum(grown.values()) >= sum(injected.values()) > 0, (grown, injected)
    assert {op for op, _ in grown} >= {"read", "write"}, grown
    via(s3_server.endpoint)
    check_output(s3_server, s3_env, want)


def test_import_fails_cleanly_under_100pct_faults(
    s3_env: str, s3_server: S3Server, via: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request fails (the kinds in turn; tests/integration/test_s3_faults.py has
    each kind alone against each storage operation)."""
    assert_server_is_expected(s3_server)
    write_inputs(s3_server, s3_env)
    with fault_proxy(s3_server.endpoint, rate=1.0, seed=1, stall_s=3.0) as proxy:
        via(proxy.endpoint)
        t0 = time.monotonic()
        rc = main(argv(s3_env))
        took = time.monotonic() - t0
    err = capsys.readouterr().err
    with capsys.disabled():
        print(f"\nimport at 100 %: rc {rc} in {took:.1f} s, faults {dict(proxy.injected)}")
    assert rc == 1, err
    # Bounded: 5 attempts, backoffs <= 0.2 * 2**n, <= 1 s timeouts: about 10 s at worst.
    assert took < 60
    assert re.search(rf"s3://{s3_env}/in\S*.*gave up after \d+ attempts", err), err
    objects = {k: v for k, v in upstream_objects(s3_server, s3_env).items() if k.startswith("out/")}
    assert set(objects) <= {"out/_import/plan.json"}, sorted(objects)
    for data in objects.values():
        assert json.loads(data)["format"] == "llava"  # whole, never a prefix


@pytest.mark.parametrize("workers", [1, 2])
def test_import_cut_by_100pct_faults_mid_run_then_resumed(
    s3_env: str, s3_server: S3Server, via: Any, capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    """`workers`: 1 imports the files in this process one after the other; 2 in a
    process pool, one file per free process."""
    assert_server_is_expected(s3_server)
    want = write_inputs(s3_server, s3_env)
    direct = s3_server.client()

    def committed() -> int:
        listing = direct.list_objects_v2(Bucket=s3_env, Prefix="out/parts/")
        return sum(o["Key"].endswith("/manifest.json") for o in listing.get("Contents", []))

    result: list[int] = []
    with fault_proxy(s3_server.endpoint, rate=0.0, seed=2, stall_s=3.0) as proxy:
        via(proxy.endpoint)
        run = threading.Thread(target=lambda: result.append(main(argv(s3_env, workers))))
        run.start()
        deadline = time.monotonic() + 120
        while committed() < 3:
            assert run.is_alive() and time.monotonic() < deadline, "no parts committed in time"
            time.sleep(0.02)
        proxy.rate = 1.0  # from here on every request fails (each kind in turn)
        t_cut = time.monotonic()
        run.join(120)
        took = time.monotonic() - t_cut
        assert not run.is_alive(), "the import hangs under 100 % faults"
    err = capsys.readouterr().err
    with capsys.disabled():
        print(f"\nimport cut by 100 % faults: rc {result}, {took:.1f} s after the cut;\n{err}")
    assert result == [1], err
    assert took < 90
    # The failed file is named, with the object that failed and the attempts.
    failed = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert failed and all(
        re.match(rf"failed: s3://{s3_env}/in/f\d\.json: .*s3://{s3_env}/\S+.*attempts", line)
        for line in failed
    ), err
    # Once the store gave up on one file, the files not started yet are not tried one
    # by one, each through its own retries (30,000 files would take hours to fail).
    skipped = re.search(rf"not started: (\d+) of {FILES} input files", err)
    assert skipped and len(failed) + int(skipped.group(1)) <= FILES, err
    # Only the files running when the store gave up failed.
    assert len(failed) <= workers and int(skipped.group(1)) >= 1, err
    objects = check_parts(s3_server, s3_env)
    assert "out/manifest.json" not in objects and "out/rejects.jsonl" not in objects
    kept = {k: v for k, v in objects.items() if k.endswith("/manifest.json")}
    assert len(kept) >= 3

    via(s3_server.endpoint)
    assert main(argv(s3_env)) == 0  # the rerun resumes at the committed parts
    check_output(s3_server, s3_env, want)
    again = upstream_objects(s3_server, s3_env)
    assert {k: again[k] for k in kept} == kept  # the parts committed before the cut stand
