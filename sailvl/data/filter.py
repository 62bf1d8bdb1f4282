"""`sailvl data filter SCORED OUTPUT --min relevance=3 ...`: a scored dataset, filtered
and balanced by its Figure 10 scores, into a new dataset.

Selection (`select`, pure). A row is kept when its `score_status` is `ok` (rows the
judge could not score are dropped as `unscored`, unless `--keep-unscored`), every
`--min CRITERION=V` holds (score >= V) and every `--max CRITERION=V` holds (score <= V).
`--balance CRITERION --per-level N` then caps each level of that criterion (its score
rounded to an integer, 1-5) at N rows, drawn uniformly with `--seed` from the rows the
thresholds kept: the paper balances instruction data so that easy, short samples do not
crowd out the hard ones. Every dropped row is counted by its first reason
(`unscored`, `below_min:<criterion>`, `above_max:<criterion>`, `balance:<criterion>`).

Two passes: the first reads the score columns and the source of every shard (one
shard at a time) and decides, holding only each row's `ok` flag and three float32
scores (13 bytes a row; no image is held beyond one shard); the second
copies each shard's kept rows (all columns, scores included, images untouched) into
output shard `<output>/<key>` with one atomic write. A rerun skips committed shards;
`_filter/plan.json` records the input and the rule, and a rerun with another rule into
the same output is refused. `manifest.json` is written last and lists the non-empty
shards, with `meta.filter`: the rule, rows in / kept, drops per reason and Table 2
style means per collection before and after.
"""

from __future__ import annotations

import io
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sailvl.caption import shards as sh
from sailvl.data.dataset import Dataset
from sailvl.data.manifest import MANIFEST, Manifest, ManifestError, ShardInfo
from sailvl.data.score import SCORE_COLUMNS, ScoreError, check_plan
from sailvl.quality import sftscore as q
from sailvl.storage import StorageError, open_store

PLAN = "_filter/plan.json"
EXIT_FAILED, EXIT_INVALID = 1, 2
Row = dict[str, Any]  # source, score_status, score_<criterion>


@dataclass(frozen=True, kw_only=True)
class Rule:
    """What `select` keeps."""

    min: dict[str, float] = field(default_factory=dict)  # criterion -> lowest kept score
    max: dict[str, float] = field(default_factory=dict)  # criterion -> highest kept score
    balance: str | None = None  # criterion whose levels are capped
    per_level: int | None = None  # rows kept per level of `balance`
    seed: int = 0
    keep_unscored: bool = False

    def __post_init__(self) -> None:
        for flag, bounds in (("--min", self.min), ("--max", self.max)):
            for crit, value in bounds.items():
                if crit not in q.CRITERIA:
                    raise ScoreError(f"{flag}: {crit!r} is not one of {list(q.CRITERIA)}")
                if not q.SCALE[0] <= value <= q.SCALE[1]:
                    raise ScoreError(f"{flag} {crit}: {value:g} is outside the 1-5 scale")
        for crit in set(self.min) & set(self.max):
            if self.min[crit] > self.max[crit]:
                raise ScoreError(f"--min {crit} is above --max {crit}: nothing would be kept")
        if (self.balance is None) != (self.per_level is None):
            raise ScoreError("--balance and --per-level: set both or neither")
        if self.balance is not None and self.balance not in q.CRITERIA:
            raise ScoreError(f"--balance: {self.balance!r} is not one of {list(q.CRITERIA)}")
        if self.per_level is not None and self.per_level < 1:
            raise ScoreError(f"--per-level: must be >= 1, got {self.per_level}")
        if self.keep_unscored and self.balance is not None:
            raise ScoreError("--keep-unscored with --balance: unscored rows have no level")


@dataclass(frozen=True)
class ShardScores:
    """One shard's scores, columnar: `ok` (score_status == ok) and each criterion's
    score (NaN where unscored), one entry per row. 13 bytes a row: the first pass holds
    these for the whole dataset (12M rows: ~160 MB), never the rows themselves."""

    ok: Any  # numpy bool array
    scores: dict[str, Any]  # criterion -> numpy float32 array

    @classmethod
    def of(cls, rows: list[Row]) -> ShardScores:
        """From row dicts (source, score_status, score_<criterion>): tests, small data."""
        import numpy as np

        ok = np.array([r["score_status"] == q.OK for r in rows], dtype=bool)
        scores = {
            c: np.array([np.nan if r[f"score_{c}"] is None else r[f"score_{c}"] for r in rows],
                        dtype=np.float32)
            for c in q.CRITERIA
        }  # fmt: skip
        return cls(ok=ok, scores=scores)

    @classmethod
    def of_table(cls, table: Any) -> ShardScores:
        import numpy as np
        import pyarrow.compute as pc

        ok = pc.fill_null(pc.equal(table.column("score_status"), q.OK), False)
        scores = {
            c: table.column(f"score_{c}").to_numpy(zero_copy_only=False).astype(np.float32)
            for c in q.CRITERIA
        }
        return cls(ok=ok.to_numpy(zero_copy_only=False).astype(bool), scores=scores)


def select(shards: list[ShardScores], rule: Rule) -> tuple[list[list[int]], Counter[str]]:
    """The kept row positions of every shard (ascending) and the drops per reason (each
    dropped row counted once, by the first rule it breaks: unscored, then the minimums,
    then the maximums, then the balance cap)."""
    import numpy as np

    dropped: Counter[str] = Counter()
    keep: list[Any] = []
    for sc in shards:
        alive = np.ones(len(sc.ok), dtype=bool)
        if not rule.keep_unscored:
            dropped["unscored"] += int((~sc.ok).sum())
            alive &= sc.ok
        for crits, flag, broken in ((rule.min, "below_min", np.less),
                                    (rule.max, "above_max", np.greater)):  # fmt: skip
            for crit, bound in crits.items():
                bad = alive & sc.ok & broken(sc.scores[crit], bound)
                dropped[f"{flag}:{crit}"] += int(bad.sum())
                alive &= ~bad
        keep.append(alive)
    if rule.balance is not None and rule.per_level is not None:
        rng = random.Random(rule.seed)
        levels = [np.rint(sc.scores[rule.balance]) for sc in shards]
        for level in sorted({float(v) for lv, k in zip(levels, keep, strict=True)
                             for v in np.unique(lv[k])}):  # fmt: skip
            # The level's rows in (shard, row) order, numbered 0..total-1 across shards.
            rows = [np.flatnonzero(k & (lv == level)) for lv, k in zip(levels, keep, strict=True)]
            total = sum(len(r) for r in rows)
            if total <= rule.per_level:
                continue
            dropped[f"balance:{rule.balance}"] += total - rule.per_level
            chosen = np.array(sorted(rng.sample(range(total), rule.per_level)))
            start = 0
            for s, r in enumerate(rows):
                mine = chosen[(chosen >= start) & (chosen < start + len(r))] - start
                keep[s][r] = False
                keep[s][r[mine]] = True
                start += len(r)
    return [np.flatnonzero(k).tolist() for k in keep], +dropped


def _bounds(items: list[str], flag: str) -> dict[str, float]:
    out = {}
    for item in items or []:
        crit, sep, value = item.partition("=")
        try:
            out[crit.strip()] = float(value)
        except ValueError:
            raise ScoreError(f"{flag}: {item!r} must be CRITERION=NUMBER") from None
        if not sep:
            raise ScoreError(f"{flag}: {item!r} must be CRITERION=NUMBER")
    return out


def rule_of(args: Any) -> Rule:
    return Rule(
        min=_bounds(args.min, "--min"),
        max=_bounds(args.max, "--max"),
        balance=args.balance,
        per_level=args.per_level,
        seed=args.seed,
        keep_unscored=args.keep_unscored,
    )


COLS = ["source", "score_status", *SCORE_COLUMNS]


def _score_table(ds: Dataset, index: int) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(ds.read_shard_bytes(index)), columns=COLS)


def _first_pass(ds: Dataset) -> tuple[list[ShardScores], q.Table2]:
    """Every shard's scores (columnar) and the Table 2 means before filtering."""
    before, scores = q.Table2(), []
    for i in range(len(ds.shards)):
        table = _score_table(ds, i)
        before.add(table.to_pylist())
        scores.append(ShardScores.of_table(table))
    return scores, before


def run(args: Any) -> int:
    try:
        rule = rule_of(args)
        if args.input.rstrip("/") == args.output.rstrip("/"):
            raise ScoreError("OUTPUT: must differ from INPUT")
        ds = Dataset.open(args.input)
        if not set(SCORE_COLUMNS) <= set(ds.manifest.meta.get("columns_added") or []):
            raise ScoreError(f"{args.input}: not a scored dataset (run sailvl data score first)")
        out = open_store(args.output)
        plan = {"input": ds.uri, "rule": asdict(rule)}
        if check_plan(out, PLAN, plan, "sailvl data filter"):
            print(f"{args.output}: filter already complete", file=sys.stderr)
            return 0
    except (ScoreError, ManifestError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        scores, before = _first_pass(ds)
        kept, dropped = select(scores, rule)
        del scores
        manifest = _write(ds, out, kept, before, rule, dropped)
    except (StorageError, ValueError) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    info = manifest.meta["filter"]
    if getattr(args, "report", None):  # a DataJob pod's metrics
        args.report({"ok": info["kept"], **info["dropped"]}, shards=len(manifest.shards))
    print(f"{args.output}: kept {info['kept']} of {info['samples_in']} samples; "
          f"dropped {info['dropped'] or 0}", file=sys.stderr)  # fmt: skip
    print("before:\n" + q.format_table(info["before"]))
    print("after:\n" + q.format_table(info["after"]))
    return 0


def _write(
    ds: Dataset,
    out: Any,
    kept: list[list[int]],
    before: q.Table2,
    rule: Rule,
    dropped: Counter[str],
) -> Manifest:
    """Second pass: each shard's kept rows (all columns) as output shard, then the
    manifest; the Table 2 means after filtering from the kept rows' score columns."""
    import hashlib

    infos = []
    after = q.Table2()
    for i, info in enumerate(ds.shards):
        table = sh.read_table(ds.read_shard_bytes(i))
        kept_rows = sh.build_output(table, kept[i], {})
        after.add(kept_rows.select(COLS).to_pylist())
        if not out.exists(info.path):  # committed by an earlier run otherwise
            out.write_bytes(info.path, sh.table_bytes(kept_rows))
        if kept[i]:
            data = out.read_bytes(info.path)
            infos.append(ShardInfo(path=info.path, samples=len(kept[i]), bytes=len(data),
                                   sha256=hashlib.sha256(data).hexdigest()))  # fmt: skip
    summary = {
        "rule": asdict(rule),
        "samples_in": len(ds),
        "kept": sum(len(k) for k in kept),
        "dropped": dict(sorted(dropped.items())),
        "before": before.result(),
        "after": after.result(),
    }
    meta = {**ds.manifest.meta, "filtered_from": ds.uri, "filter": summary}
    manifest = Manifest(shards=infos, meta=meta)
    out.write_bytes(MANIFEST, manifest.to_json().encode())
    return manifest


def add_arguments(p: Any) -> None:
    """The `data filter` options (called by `sailvl.cli`)."""
    p.add_argument("input", help="a scored dataset (output of sailvl data score)")
    p.add_argument("output", help="the filtered dataset")
    crit = "|".join(q.CRITERIA)
    p.add_argument("--min", action="append", default=[], metavar=f"{{{crit}}}=V",
                   help="keep rows scoring >= V (repeatable)")  # fmt: skip
    p.add_argument("--max", action="append", default=[], metavar=f"{{{crit}}}=V",
                   help="keep rows scoring <= V (repeatable)")  # fmt: skip
    p.add_argument("--balance", choices=q.CRITERIA, help="cap rows per level of this criterion")
    p.add_argument("--per-level", type=int, help="rows kept per level (with --balance)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --balance draw")
    p.add_argument("--keep-unscored", action="store_true",
                   help="keep rows the judge could not score (default: drop)")  # fmt: skip


def main(args: Any) -> int:
    return run(args)
