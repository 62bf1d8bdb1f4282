"""`sailvl stats DATASET [--sample N] [--seed S] [--lang auto|en|zh]`: Table 1 rows."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    from sailvl.quality.stats import stats_main

    if getattr(args, "column", "caption") != "caption":
        raise SystemExit("sailvl stats: only the caption column is supported")
    return stats_main(args.dataset, args.sample, args.lang, getattr(args, "seed", 0))
