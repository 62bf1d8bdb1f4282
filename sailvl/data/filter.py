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

Two passes: the first reads only the score columns and the source of every shard
(Parquet column projection) and decides, holding those few values of every row in
memory (a few hundred bytes a row as Python objects: ~0.5 GB per million rows; no
image is held beyond one shard); the second
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


def _reason(row: Row, rule: Rule) -> str | None:
    if row["score_status"] != q.OK:
        return None if rule.keep_unscored else "unscored"
    for crit, lo in rule.min.items():
        if row[f"score_{crit}"] < lo:
            return f"below_min:{crit}"
    for crit, hi in rule.max.items():
        if row[f"score_{crit}"] > hi:
            return f"above_max:{crit}"
    return None


def select(shards: list[list[Row]], rule: Rule) -> tuple[list[list[int]], Counter[str]]:
    """The kept row positions of every shard (ascending) and the drops per reason."""
    dropped: Counter[str] = Counter()
    kept: list[tuple[int, int]] = []
    for s, rows in enumerate(shards):
        for r, row in enumerate(rows):
            why = _reason(row, rule)
            if why is None:
                kept.append((s, r))
            else:
                dropped[why] += 1
    if rule.balance is not None and rule.per_level is not None:
        levels: dict[int, list[tuple[int, int]]] = {}
        for s, r in kept:
            levels.setdefault(round(shards[s][r][f"score_{rule.balance}"]), []).append((s, r))
        rng = random.Random(rule.seed)
        kept = []
        for level in sorted(levels):
            members = levels[level]
            if len(members) > rule.per_level:
                dropped[f"balance:{rule.balance}"] += len(members) - rule.per_level
                members = rng.sample(members, rule.per_level)
            kept += members
    out: list[list[int]] = [[] for _ in shards]
    for s, r in sorted(kept):
        out[s].append(r)
    return out, dropped


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


def _score_rows(ds: Dataset, index: int) -> list[Row]:
    import pyarrow.parquet as pq

    data = ds.read_shard_bytes(index)
    cols = ["source", "score_status", *SCORE_COLUMNS]
    return list(pq.read_table(io.BytesIO(data), columns=cols).to_pylist())


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
        scores = [_score_rows(ds, i) for i in range(len(ds.shards))]
        kept, dropped = select(scores, rule)
        manifest = _write(ds, out, kept, scores, rule, dropped)
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
    scores: list[list[Row]],
    rule: Rule,
    dropped: Counter[str],
) -> Manifest:
    import hashlib

    infos = []
    before, after = q.Table2(), q.Table2()
    for i, info in enumerate(ds.shards):
        before.add(scores[i])
        after.add(scores[i][r] for r in kept[i])
        if not out.exists(info.path):  # committed by an earlier run otherwise
            table = sh.read_table(ds.read_shard_bytes(i))
            out.write_bytes(info.path, sh.table_bytes(sh.build_output(table, kept[i], {})))
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
