"""`sailvl plan FILE --throughput THR`: device-hours of each step of a Curriculum.

FILE is a Curriculum resource (validated as `sailvl validate` does; an invalid one
exits 2 naming the field). THR is a throughput file (format: `sailvl.api.compute`),
measured by `tests/gpu/train_gpu.py --throughput-out` or written by hand. Prints one row
per step (work, devices, device-hours, wall-clock hours) and, for the 2b / 8b presets,
the paper's reported NPU-hours next to the plan's. `--json` prints the rows as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

EXIT_INVALID = 2


def _load(path: Path) -> Any:
    import yaml

    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def main(args: Any) -> int:
    import yaml

    from sailvl.api import parse_resource
    from sailvl.api.compute import Throughputs, paper_comparison, plan_compute, render

    try:
        doc, raw_tp = _load(args.file), _load(args.throughput)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"sailvl plan: cannot read: {err}", file=sys.stderr)
        return EXIT_INVALID
    kind, _name, cur = parse_resource(doc)  # SpecError: exit 2 in sailvl.cli
    if kind != "Curriculum":
        print(f"sailvl plan: {args.file} is a {kind}, not a Curriculum", file=sys.stderr)
        return EXIT_INVALID
    try:
        tp = Throughputs.parse(raw_tp)
        rows = plan_compute(cur, tp)  # type: ignore[arg-type]
    except ValueError as err:
        print(f"sailvl plan: {args.throughput}: {err}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        cmp = paper_comparison(cur.model.preset, rows)  # type: ignore[attr-defined]
        out = {
            "device": tp.device,
            "steps": [asdict(r) for r in rows],
            "paper": [{"phase": p, "plan": o, "paper": h} for p, o, h in cmp],
        }
        print(json.dumps(out, indent=1))
    else:
        print(render(cur, tp, rows))  # type: ignore[arg-type]
    return 0


def add_arguments(p: Any) -> None:
    p.add_argument("file", type=Path, help="a Curriculum resource (YAML)")
    p.add_argument("--throughput", required=True, type=Path, help="throughput file (YAML/JSON)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
