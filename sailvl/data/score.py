"""`sailvl data score INPUT OUTPUT --judge-url URL`: SFT scores (Figure 10) as columns.

Every sample of the input dataset is rated by a judge model behind an OpenAI-protocol
endpoint (LMDeploy `api_server`, vLLM, ...) on task difficulty, data complexity and
image-text relevance (`sailvl.quality.sftscore`). The output is a dataset with the
input's columns and, per row, `score_difficulty`, `score_complexity`,
`score_relevance` (1-5, null unless the status is ok), `score_status` (`ok` or the
failure reason), `score_reply` (the judge's raw reply, cut to 2,000 characters, for
audit) and `score_prompt_version`. Readers that know only the standard columns
(training) ignore the extra ones; `sailvl data filter` reads them.

Layout and commit (the CaptionJob's rules, `sailvl.caption.shards`). Output shard
`<output>/<key>` for input shard `<input>/<key>`, written in one atomic object write
after its rejects sidecar `_score/rejects/<key>.jsonl` and its index object
`_score/index/<key>.json` (rows, bytes, sha256, the Table 2 sums): a shard exists
exactly when it is complete, so a rerun (a restarted pod, a killed command) skips every committed
shard and asks the judge only about the others. Pod k of n (`--shard-index`,
`--shard-count`, an Indexed Job's completion index) scores the input shards at
manifest positions i % n == k. The pod that finds every shard committed writes
`rejects.jsonl` (all sidecars, in shard order) and then `manifest.json` (the commit
point of the whole dataset) with `meta.score`: per-reason counts, the scored share and
Table 2 style means per collection (the `source` column), built from the small index
objects, never by reading the shards back. The content depends only on the committed
shards, so pods racing to finalise write identical bytes.

Bounded work. At most `--concurrency` requests are in flight (one thread pool for the
run); each is retried `--retries` times with back-off on transient failures
(`sailvl.runtime.openai_client`). A request that still fails is a per-sample `timeout`
or `judge_error`, not a crash. Those say nothing about the sample, so a shard where
more than `--max-failed-ratio` of the samples got one is NOT committed: the command
goes on with its other shards and exits 1, and the rerun (the Indexed Job's
per-index retry) asks again. A dead judge therefore never turns a dataset into
"unscored" rows; a judge that answers badly (non-JSON, out of range, refusals) does
produce committed, counted failures.

Exit codes: 0 done (this pod's shards committed; the manifest written if all are);
1 a shard left uncommitted (judge failures above the limit, I/O); 2 invalid input.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sailvl.caption import shards as sh
from sailvl.data.dataset import Dataset
from sailvl.data.manifest import MANIFEST, Manifest, ManifestError, ShardError, ShardInfo
from sailvl.quality import sftscore as q
from sailvl.storage import NotFoundError, StorageError, Store, open_store

SCORE_COLUMNS = tuple(f"score_{c}" for c in q.CRITERIA)
COLUMNS_ADDED = (*SCORE_COLUMNS, "score_status", "score_reply", "score_prompt_version")
PLAN = "_score/plan.json"
SIDECAR = "_score/rejects/{key}.jsonl"
INDEX = "_score/index/{key}.json"
REJECTS = "rejects.jsonl"
REPLY_CHARS = 2000
EXIT_FAILED, EXIT_INVALID = 1, 2


class ScoreError(ValueError):
    """Invalid input: the message names the argument or the output's state."""


def score_columns(verdicts: list[q.Verdict]) -> dict[str, Any]:
    """The added columns (pyarrow arrays) for one shard's verdicts, in row order."""
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for crit, name in zip(q.CRITERIA, SCORE_COLUMNS, strict=True):
        values = [v.scores[crit] if v.scores else None for v in verdicts]
        cols[name] = pa.array(values, type=pa.float64())
    cols["score_status"] = pa.array([v.status for v in verdicts], type=pa.string())
    cols["score_reply"] = pa.array([v.reply[:REPLY_CHARS] for v in verdicts], type=pa.string())
    version = [q.SCORE_PROMPT_VERSION] * len(verdicts)
    cols["score_prompt_version"] = pa.array(version, type=pa.string())
    return cols


def check_plan(out: Store, key: str, plan: dict[str, Any], what: str) -> bool:
    """Record `plan` under `key`, or compare with the recorded one (a rerun must do the
    same work, or committed shards would mix two runs); True if the output's manifest
    exists (the run is complete). `what` names the run in messages ("score")."""
    try:
        old = json.loads(out.read_bytes(key))
    except NotFoundError:
        if out.exists(MANIFEST):
            raise ScoreError(f"{out.uri}: already holds a dataset not written by {what}") from None
        out.write_bytes(key, json.dumps(plan, indent=1).encode())
        return False
    if old != plan:
        raise ScoreError(
            f"{out.uri}: holds a {what} run with other settings ({old}); write to a new output"
        )
    return out.exists(MANIFEST)


def score_shard(
    ds: Dataset, index: int, ask: q.Ask, pool: ThreadPoolExecutor
) -> tuple[Any, list[q.Verdict]]:
    """The output table of input shard `index` and its verdicts (one per input row)."""
    data = ds.read_shard_bytes(index)
    table = sh.read_table(data)
    rows = ds.read_shard(index, data).rows
    verdicts = list(pool.map(lambda s: q.judge_sample(ask, s), rows))
    cols = score_columns(verdicts)
    for name, col in cols.items():
        if name in table.column_names:  # rescoring a scored dataset replaces its scores
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    return table, verdicts


def _sidecar(ds: Dataset, index: int, verdicts: list[q.Verdict], ids: list[str]) -> bytes:
    lines = []
    for row, (sid, v) in enumerate(zip(ids, verdicts, strict=True)):
        if v.status != q.OK:
            rec = {"id": sid, "reason": v.status, "detail": v.detail, "reply": v.reply[:300]}
            lines.append(json.dumps({**rec, "shard": ds.shards[index].path, "row": row}) + "\n")
    return "".join(lines).encode()


def _index(table: Any, data: bytes) -> bytes:
    """The shard's index object: what the manifest and the summary need of it (rows,
    bytes, sha256, the Table 2 sums), so finalising never reads the shards back."""
    import hashlib

    cols = ["source", "score_status", *SCORE_COLUMNS]
    part = q.Table2()
    part.add(table.select(cols).to_pylist())
    facts = {"samples": table.num_rows, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest(), "table2": part.state()}  # fmt: skip
    return json.dumps(facts).encode()


def finalize(in_uri: str, out: Store, keys: list[str], meta: dict[str, Any]) -> Manifest | None:
    """rejects.jsonl, then manifest.json, once every shard is committed (else None).
    Reads each shard's index object and rejects sidecar (small), never the shards."""
    if not all(out.exists(k) for k in keys):
        return None
    infos, rejects, table2 = [], [], q.Table2()
    for key in keys:
        facts = json.loads(out.read_bytes(INDEX.format(key=key)))
        table2.merge(facts["table2"])
        infos.append(ShardInfo(path=key, samples=facts["samples"], bytes=facts["bytes"],
                               sha256=facts["sha256"]))  # fmt: skip
        rejects.append(out.read_bytes(SIDECAR.format(key=key)))
    out.write_bytes(REJECTS, b"".join(rejects))
    samples = sum(i.samples for i in infos)
    summary = {
        **meta,
        "samples": samples,
        "scored": samples - sum(table2.failed.values()),
        "rejected": dict(table2.failed),
        "rejects_file": REJECTS,
        "by_source": table2.result(),
    }
    manifest = Manifest(
        shards=infos,
        meta={"scored_from": in_uri, "columns_added": list(COLUMNS_ADDED), "score": summary},
    )
    out.write_bytes(MANIFEST, manifest.to_json().encode())
    return manifest


def run(args: Any) -> int:
    """The command (see the module docstring)."""
    from sailvl.quality.judge import JudgeConfig
    from sailvl.runtime.openai_client import ChatClient

    try:
        _check_args(args)
        cfg = JudgeConfig(
            base_url=args.judge_url,
            model=args.model,
            retries=args.retries,
            timeout_s=args.timeout,
            max_tokens=args.max_tokens,
        )
        ds = Dataset.open(args.input)
        out = open_store(args.output)
        keys = [s.path for s in ds.shards]
        plan = {"input": ds.uri, "shards": keys, "model": args.model,
                "prompt_version": q.SCORE_PROMPT_VERSION}  # fmt: skip
        if check_plan(out, PLAN, plan, "sailvl data score"):
            print(f"{args.output}: scoring already complete", file=sys.stderr)
            return 0
    except (ScoreError, ManifestError, ValueError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return EXIT_INVALID
    client = ChatClient(cfg)

    def ask(content: Any) -> str:
        return client.complete(content, temperature=cfg.temperature)

    mine = [i for i in range(len(keys)) if i % args.shard_count == args.shard_index]
    failed = _score_all(ds, out, keys, mine, ask, args)
    meta = {"judge_model": args.model, "prompt_version": q.SCORE_PROMPT_VERSION}
    manifest = finalize(ds.uri, out, keys, meta)
    if failed:
        for line in failed:
            print(f"failed: {line}", file=sys.stderr)
        return EXIT_FAILED
    if manifest is None:
        print(f"shard {args.shard_index} done; other shards still running", file=sys.stderr)
        return 0
    info = manifest.meta["score"]
    bad = {k: v for k, v in info["rejected"].items() if v}
    print(f"{args.output}: {info['scored']} of {info['samples']} samples scored; "
          f"not scored {bad or 0}", file=sys.stderr)  # fmt: skip
    print(q.format_table(info["by_source"]))
    return 0


def _score_all(
    ds: Dataset, out: Store, keys: list[str], mine: list[int], ask: q.Ask, args: Any
) -> list[str]:
    failed: list[str] = []
    t0, done = time.monotonic(), 0
    with ThreadPoolExecutor(args.concurrency, thread_name_prefix="judge") as pool:
        for i in mine:
            key = keys[i]
            if out.exists(key):
                continue  # committed by an earlier run
            try:
                table, verdicts = score_shard(ds, i, ask, pool)
            except (ShardError, StorageError) as exc:
                failed.append(f"{key}: {exc}")
                continue
            transient = sum(v.status in q.TRANSIENT for v in verdicts)
            if verdicts and transient / len(verdicts) > args.max_failed_ratio:
                failed.append(
                    f"{key}: {transient} of {len(verdicts)} requests failed at the endpoint "
                    f"(> --max-failed-ratio {args.max_failed_ratio}); not committed, rerun"
                )
                continue
            ids = [str(x) for x in table.column("id").to_pylist()]
            data = sh.table_bytes(table)
            out.write_bytes(SIDECAR.format(key=key), _sidecar(ds, i, verdicts, ids))
            out.write_bytes(INDEX.format(key=key), _index(table, data))
            out.write_bytes(key, data)  # the shard's commit point
            if getattr(args, "report", None):  # a DataJob pod's metrics
                args.report(Counter(v.status for v in verdicts))
            done += len(verdicts)
            rate = done / max(time.monotonic() - t0, 1e-6)
            print(f"score: {key} committed ({done} samples, {rate:.1f}/s)", file=sys.stderr)
    return failed


def _check_args(args: Any) -> None:
    if args.concurrency < 1:
        raise ScoreError(f"--concurrency: must be >= 1, got {args.concurrency}")
    if not 0 <= args.shard_index < args.shard_count:
        raise ScoreError("--shard-index: must be in [0, --shard-count)")
    if not 0 <= args.max_failed_ratio <= 1:
        raise ScoreError(f"--max-failed-ratio: must be in [0, 1], got {args.max_failed_ratio}")
    if args.input.rstrip("/") == args.output.rstrip("/"):
        raise ScoreError("OUTPUT: must differ from INPUT")


def add_arguments(p: Any) -> None:
    """The `data score` options (called by `sailvl.cli`)."""
    from sailvl.runtime.openai_client import add_judge_arguments

    p.add_argument("input", help="dataset to score (URI or path)")
    p.add_argument("output", help="scored dataset: the input's columns plus score_*")
    add_judge_arguments(p, concurrency=16, timeout=120.0)
    p.add_argument("--max-tokens", type=int, default=128, help="reply length limit")
    p.add_argument("--max-failed-ratio", type=float, default=0.05,
                   help="leave a shard uncommitted (exit 1) above this share of "
                        "timeouts / endpoint errors")  # fmt: skip
    index = int(os.environ.get("JOB_COMPLETION_INDEX", "0"))
    p.add_argument("--shard-index", type=int, default=index,
                   help="this pod's index k (default: JOB_COMPLETION_INDEX, else 0)")  # fmt: skip
    p.add_argument("--shard-count", type=int, default=1,
                   help="pods in all; pod k scores shards i with i %% count == k")  # fmt: skip


def main(args: Any) -> int:
    return run(args)
