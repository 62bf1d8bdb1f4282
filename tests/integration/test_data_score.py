"""`sailvl data score` / `sailvl data filter` against a real HTTP judge the test starts.

The judge is an OpenAI-compatible chat-completions server on 127.0.0.1 (the
`chat_server` fixture's `ThreadingHTTPServer`) whose reply depends on the sample the
request is about: good JSON for most, and for marked samples each kind of bad output
(prose, out-of-range, a refusal, a missing field, HTTP 500 on every attempt, a reply
slower than the client's timeout). The tests check the scores that land in the
dataset's columns, the failures counted per reason in the manifest and `rejects.jsonl`,
the bounded concurrency, resume after SIGKILL, and the filter's thresholds / balance.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from sailvl.cli import main as cli
from sailvl.data.dataset import Dataset, DatasetWriter, WriterConfig
from sailvl.data.filter import Rule, ShardScores, select
from sailvl.quality.sftscore import parse_reply
from tests.fixtures.chat_server import ChatServer

REPO = Path(__file__).resolve().parents[2]
MARK = re.compile(r"question about item (s\d+)")


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, 40, 90)).save(buf, "PNG")
    return buf.getvalue()


def write_input(root: Path, n: int, per_shard: int) -> str:
    """n samples over shards of `per_shard`; two collections (source a / b)."""
    uri = str(root / "in")
    cfg = WriterConfig(max_samples_per_shard=per_shard)
    with DatasetWriter(uri, cfg) as w:
        for i in range(n):
            w.write(
                {
                    "id": f"s{i}",
                    "images": [_png(i)],
                    "source": "a" if i % 2 == 0 else "b",
                    "conversations": [
                        {"role": "user", "content": f"<image>\nquestion about item s{i}"},
                        {"role": "assistant", "content": f"answer {i}"},
                    ],
                }
            )
    return uri


def good(i: int) -> str:
    """The judge's good reply for sample i: scores follow from i (checked later)."""
    d, c, r = 1 + i % 5, 1 + (i // 5) % 5, 1 + (i * 7) % 5
    return f'```json\n{{"difficulty": {d}, "complexity": {c}, "relevance": {r}}}\n```'


def sample_of(body: dict[str, Any]) -> str:
    parts = body["messages"][0]["content"]
    text = parts if isinstance(parts, str) else parts[0]["text"]
    m = MARK.search(text)
    assert m, text
    return m.group(1)


class Judge:
    """Replies by sample id; records requests per id and the peak concurrency."""

    def __init__(self, server: ChatServer, bad: dict[str, Any], delay: float = 0.0) -> None:
        self.bad, self.delay = bad, delay
        self.calls: Counter[str] = Counter()
        self.inflight = self.peak = 0
        self.lock = threading.Lock()
        server.responder = self

    def __call__(self, body: dict[str, Any]) -> Any:
        sid = sample_of(body)
        item = self.bad.get(sid)
        if item == "slow":
            with self.lock:
                self.calls[sid] += 1
            # Longer than the client's --timeout 2; the client has given up on it, so
            # it is left out of the in-flight count (which measures the client's bound).
            time.sleep(4)
            return good(int(sid[1:]))
        with self.lock:
            self.calls[sid] += 1
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
        try:
            time.sleep(self.delay)
            return item if item is not None else good(int(sid[1:]))
        finally:
            with self.lock:
                self.inflight -= 1


BAD = {
    "s3": "Difficulty: 4, complexity: 2, relevance: 5",  # prose, not JSON
    "s5": '{"difficulty": 7, "complexity": 2, "relevance": 3}',  # out of the 1-5 scale
    "s7": "I'm sorry, but I cannot evaluate this image.",  # a refusal
    "s9": '{"difficulty": 2, "complexity": 3}',  # relevance missing
    "s11": (500, "overloaded"),  # every attempt fails
    "s13": "slow",  # every attempt times out
}
EXPECTED_REASON = {
    "s3": "non_json",
    "s5": "out_of_range",
    "s7": "refusal",
    "s9": "missing_field",
    "s11": "judge_error",
    "s13": "timeout",
}


def score_args(inp: str, out: str, url: str, *extra: str) -> list[str]:
    return ["data", "score", inp, out, "--judge-url", url, "--model", "fake-judge",
            "--retries", "1", "--timeout", "20", *extra]  # fmt: skip


def read_scores(uri: str) -> list[dict[str, Any]]:
    ds = Dataset.open(uri)
    rows = []
    for info in ds.shards:
        rows += pq.read_table(io.BytesIO(ds.store.read_bytes(info.path))).to_pylist()
    return rows


def test_score_good_and_bad_judge_output(tmp_path: Path, chat_server: ChatServer) -> None:
    inp = write_input(tmp_path, 24, per_shard=8)
    judge = Judge(chat_server, BAD, delay=0.05)
    out = str(tmp_path / "scored")
    # --timeout 2 for the "slow" sample; the others answer in 0.05 s (generous on 2 busy
    # cores: a good request that timed out would fail the exact per-reason counts).
    rc = cli(score_args(inp, out, chat_server.base_url, "--concurrency", "3",
                        "--max-failed-ratio", "0.25", "--timeout", "2"))  # fmt: skip
    assert rc == 0
    rows = read_scores(out)
    assert sorted(r["id"] for r in rows) == sorted(f"s{i}" for i in range(24))
    for row in rows:
        i = int(row["id"][1:])
        if row["id"] in EXPECTED_REASON:
            assert row["score_status"] == EXPECTED_REASON[row["id"]], row
            assert row["score_difficulty"] is None and row["score_relevance"] is None
        else:
            d, c, r = (json.loads(good(i).strip("`json\n"))[k] for k in
                       ("difficulty", "complexity", "relevance"))  # fmt: skip
            assert row["score_status"] == "ok"
            assert (row["score_difficulty"], row["score_complexity"], row["score_relevance"]) == (
                d, c, r)  # fmt: skip
        assert row["images"] == [_png(i)]  # the input's columns carried through
    manifest = Dataset.open(out).manifest
    meta = manifest.meta["score"]
    assert meta["samples"] == 24 and meta["scored"] == 18
    assert {k: v for k, v in meta["rejected"].items() if v} == dict(
        Counter(EXPECTED_REASON.values())
    )
    rejects = [
        json.loads(x) for x in (tmp_path / "scored" / "rejects.jsonl").read_text().splitlines()
    ]
    assert {r["id"]: r["reason"] for r in rejects} == EXPECTED_REASON
    # Table 2 style means per collection, over the scored rows only.
    for src, parity in (("a", 0), ("b", 1)):
        ok = [r for r in rows if r["source"] == src and r["score_status"] == "ok"]
        mean = sum(r["score_difficulty"] for r in ok) / len(ok)
        assert meta["by_source"][src]["difficulty"] == pytest.approx(mean, abs=1e-4)
        assert meta["by_source"][src]["samples"] == 12
        assert all(int(r["id"][1:]) % 2 == parity for r in ok)
    # Retries: the 500 and the timeout were asked twice (retries 1), the rest once.
    assert judge.calls["s11"] == 2 and judge.calls["s13"] == 2
    assert all(judge.calls[f"s{i}"] == 1 for i in range(24) if f"s{i}" not in ("s11", "s13"))
    assert 1 < judge.peak <= 3  # bounded concurrency, and concurrent at all
    # Training readers see the standard columns only.
    assert Dataset.open(out).read_shard(0).rows[0]["id"].startswith("s")


def test_endpoint_failures_leave_shard_uncommitted(tmp_path: Path, chat_server: ChatServer) -> None:
    """A dead judge must not turn samples into committed 'unscored' rows: the shard with
    too many endpoint failures stays uncommitted (exit 1) and the rerun asks again."""
    inp = write_input(tmp_path, 8, per_shard=4)
    judge = Judge(chat_server, {"s1": (500, "down"), "s2": (500, "down")})
    out = str(tmp_path / "scored")
    args = score_args(inp, out, chat_server.base_url, "--max-failed-ratio", "0.3")
    assert cli(args) == 1
    assert not (tmp_path / "scored" / "manifest.json").exists()
    assert not (tmp_path / "scored" / "part-00000.parquet").exists()
    assert (tmp_path / "scored" / "part-00001.parquet").exists()
    judge.bad = {}  # the endpoint recovers
    before = judge.calls.copy()
    assert cli(args) == 0
    asked = judge.calls - before
    assert sorted(asked) == ["s0", "s1", "s2", "s3"]  # only the uncommitted shard
    assert {r["score_status"] for r in read_scores(out)} == {"ok"}


def test_score_resumes_after_sigkill(tmp_path: Path, chat_server: ChatServer) -> None:
    """SIGKILL mid-run; the rerun skips committed shards; every id scored exactly once."""
    inp = write_input(tmp_path, 40, per_shard=4)
    judge = Judge(chat_server, {}, delay=0.1)
    out = tmp_path / "scored"
    cmd = [sys.executable, "-m", "sailvl.cli",
           *score_args(inp, str(out), chat_server.base_url, "--concurrency", "2")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("part-*.parquet"))) < 3:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no shard committed in 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    committed = {p.name for p in out.glob("part-*.parquet")}
    assert 3 <= len(committed) < 10 and not (out / "manifest.json").exists()
    done_ids = {
        r["id"] for p in committed for r in pq.read_table(out / p, columns=["id"]).to_pylist()
    }
    before = judge.calls.copy()
    assert cli(score_args(inp, str(out), chat_server.base_url)) == 0
    asked_again = set((judge.calls - before).keys())
    assert not asked_again & done_ids  # committed shards were not rescored
    rows = read_scores(str(out))
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(f"s{i}" for i in range(40))  # each exactly once
    assert all(r["score_status"] == "ok" for r in rows)
    for r in rows:
        i = int(r["id"][1:])
        assert r["score_difficulty"] == 1 + i % 5


def test_filter_thresholds_balance_and_table2(tmp_path: Path, chat_server: ChatServer) -> None:
    inp = write_input(tmp_path, 60, per_shard=16)
    Judge(chat_server, {"s3": "no idea"})
    scored = str(tmp_path / "scored")
    assert cli(score_args(inp, scored, chat_server.base_url)) == 0
    rows = {r["id"]: r for r in read_scores(scored)}
    out = str(tmp_path / "filtered")
    assert cli(["data", "filter", scored, out, "--min", "relevance=3", "--max",
                "complexity=4"]) == 0  # fmt: skip
    want = sorted(
        k for k, r in rows.items()
        if r["score_status"] == "ok" and r["score_relevance"] >= 3 and r["score_complexity"] <= 4
    )  # fmt: skip
    got = read_scores(out)
    assert sorted(r["id"] for r in got) == want and want
    assert all(r["images"] == [_png(int(r["id"][1:]))] for r in got)
    meta = Dataset.open(out).manifest.meta["filter"]
    assert meta["samples_in"] == 60 and meta["kept"] == len(want)
    assert meta["dropped"]["unscored"] == 1
    assert sum(meta["dropped"].values()) == 60 - len(want)
    for src in ("a", "b"):
        kept = [rows[k] for k in want if rows[k]["source"] == src]
        mean = sum(r["score_relevance"] for r in kept) / len(kept)
        assert meta["after"][src]["relevance"] == pytest.approx(mean, abs=1e-4)
        assert meta["after"][src]["relevance"] >= 3 > meta["before"][src]["relevance"] - 1
    # Balance: at most 4 rows per difficulty level, same rows on a rerun elsewhere.
    outs = []
    for name in ("bal1", "bal2"):
        o = str(tmp_path / name)
        assert cli(["data", "filter", scored, o, "--balance", "difficulty", "--per-level", "4",
                    "--seed", "7"]) == 0  # fmt: skip
        outs.append(sorted(r["id"] for r in read_scores(o)))
    assert outs[0] == outs[1] and len(outs[0]) == 20
    levels = Counter(rows[k]["score_difficulty"] for k in outs[0])
    assert levels == {1.0: 4, 2.0: 4, 3.0: 4, 4.0: 4, 5.0: 4}
    # Another rule into the same output is refused (exit 2), not mixed in.
    assert cli(["data", "filter", scored, out, "--min", "relevance=5"]) == 2


def test_select_is_a_subset_with_counted_drops() -> None:
    shards = [
        [{"source": "x", "score_status": "ok", "score_difficulty": float(d),
          "score_complexity": 3.0, "score_relevance": float(r)}
         for d in range(1, 6) for r in range(1, 6)],
        [{"source": "y", "score_status": "non_json", "score_difficulty": None,
          "score_complexity": None, "score_relevance": None}],
    ]  # fmt: skip
    shards = [ShardScores.of(rows) for rows in shards]
    kept, dropped = select(shards, Rule(min={"relevance": 4}, balance="difficulty", per_level=1))
    assert len(kept[0]) == 5 and kept[1] == []
    assert dropped == {"below_min:relevance": 15, "balance:difficulty": 5, "unscored": 1}
    assert {float(shards[0].scores["difficulty"][r]) for r in kept[0]} == {1.0, 2.0, 3.0, 4.0, 5.0}
    kept, dropped = select(shards, Rule(keep_unscored=True))
    assert kept == [list(range(25)), [0]] and not dropped


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ('{"difficulty": 2, "complexity": 3, "relevance": 5}', "ok"),
        ("{'Difficulty': '4', 'complexity': 1, 'relevance': 2,}", "ok"),
        ('{"difficulty": 0, "complexity": 3, "relevance": 5}', "out_of_range"),
        ('{"difficulty": true, "complexity": 3, "relevance": 5}', "out_of_range"),
        ('{"difficulty": "high", "complexity": 3, "relevance": 5}', "out_of_range"),
        ("difficulty 3 complexity 3 relevance 3", "non_json"),
        ("4", "non_json"),
        ("Sorry, I can't help with that.", "refusal"),
        ('{"score": 4}', "missing_field"),
    ],
)
def test_parse_reply(reply: str, status: str) -> None:
    v = parse_reply(reply)
    assert v.status == status
    assert (v.scores is not None) == (status == "ok")


def test_datajob_yaml_runs_locally_and_as_pods(
    tmp_path: Path, chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sailvl run` of a score DataJob (every index in turn), then the filter DataJob's
    job config through `sailvl data job --config` as its pod runs it."""
    import yaml

    inp = write_input(tmp_path, 12, per_shard=4)
    judge = Judge(chat_server, {})
    scored, curated = f"file://{tmp_path}/scored", f"file://{tmp_path}/curated"

    def resource(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "sailvl.io/v1alpha1", "kind": "DataJob",
                "metadata": {"name": name}, "spec": spec}  # fmt: skip

    score = resource("score", task="score", input=f"file://{inp}", output=scored, parallelism=2,
                     score={"judge": {"endpoint": chat_server.base_url, "model": "j"}})  # fmt: skip
    flt = resource("filter", task="filter", input=scored, output=curated,
                   filter={"min": {"difficulty": 4}})  # fmt: skip
    path = tmp_path / "datajobs.yaml"
    path.write_text(yaml.safe_dump_all([score, flt]))  # score, then filter, in file order
    assert cli(["run", str(path)]) == 0
    assert sum(judge.calls.values()) == 12
    assert Dataset.open(scored).manifest.meta["score"]["scored"] == 12
    from sailvl.api.jobconfig import dump_job_config, job_config
    from sailvl.api.validation import parse_resource

    pod = resource("filter2", task="filter", input=scored, output=f"{curated}-pod",
                   filter={"min": {"difficulty": 4}})  # fmt: skip
    cfg = tmp_path / "job.yaml"
    cfg.write_text(dump_job_config(job_config("DataJob", "filter2", "ns", parse_resource(pod)[2])))
    monkeypatch.setenv("SAILVL_METRICS_PORT", "0")  # the registry is read directly
    assert cli(["data", "job", "--config", str(cfg)]) == 0
    assert read_scores(f"{curated}-pod") == read_scores(curated)
    from prometheus_client import REGISTRY

    job = {"namespace": "ns", "name": "filter2", "task": "filter"}
    kept = len(read_scores(curated))
    assert REGISTRY.get_sample_value("sailvl_data_samples_total", {**job, "status": "ok"}) == kept
    dropped = REGISTRY.get_sample_value(
        "sailvl_data_samples_total", {**job, "status": "below_min:difficulty"}
    )
    assert dropped == 12 - kept
    score2 = dict(score, metadata={"name": "score2"})
    score2["spec"] = {**score["spec"], "output": f"{scored}-pod", "parallelism": 1}
    cfg.write_text(
        dump_job_config(job_config("DataJob", "score2", "ns", parse_resource(score2)[2]))
    )
    assert cli(["data", "job", "--config", str(cfg)]) == 0
    job = {"namespace": "ns", "name": "score2", "task": "score"}
    assert REGISTRY.get_sample_value("sailvl_data_samples_total", {**job, "status": "ok"}) == 12
    assert REGISTRY.get_sample_value("sailvl_data_shards_total", job) == 3
    kept = sorted(int(r["id"][1:]) for r in read_scores(curated))
    assert kept == [i for i in range(12) if 1 + i % 5 >= 4]


def test_import_datajob_two_indexes_locally(tmp_path: Path) -> None:
    """A `task: import` DataJob with parallelism 2 through `sailvl run`: index 0 and 1
    import their tars, the second finalises; the result is the full import (every good
    row once, every bad row listed with its reason)."""
    import yaml

    from tests.unit.test_import_fixtures import check_import, write_webdataset

    src, exp = write_webdataset(tmp_path / "wds", shards=3)
    out = f"file://{tmp_path}/imported"
    job = {"apiVersion": "sailvl.io/v1alpha1", "kind": "DataJob", "metadata": {"name": "imp"},
           "spec": {"task": "import", "input": f"file://{src}", "output": out, "parallelism": 2,
                    "import": {"format": "webdataset", "maxRejectRatio": 1}}}  # fmt: skip
    path = tmp_path / "import.yaml"
    path.write_text(yaml.safe_dump(job))
    assert cli(["run", str(path)]) == 0
    check_import(out, exp)
