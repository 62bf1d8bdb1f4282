"""The ``sailvl`` command: one entry point, one subcommand per job.

Subcommands import their job module only when they run, so ``sailvl crds`` or
``sailvl validate`` never pull in torch. Invalid input exits with code 2 and a message
that names the field; nothing is started.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_INVALID = 2

# subcommand -> (module, function): the function takes the parsed argparse namespace.
JOBS = {
    "train": ("sailvl.train.main", "main"),
    "caption": ("sailvl.caption.main", "main"),
    "eval": ("sailvl.eval.main", "main"),
    "run": ("sailvl.local.main", "main"),
    "stats": ("sailvl.quality.main", "main"),
    "report": ("sailvl.eval.report_main", "main"),
    "gen-data": ("sailvl.local.assets", "main"),
    "data": ("sailvl.data.commands", "main"),
    "convert": ("sailvl.model.layout", "main"),
    "export": ("sailvl.model.export", "main"),
    "plan": ("sailvl.plan_cli", "main"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sailvl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("crds", help="write crds/<kind>.yaml and the chart's copy")
    c.add_argument("--out", action="append", type=Path, help="target folder (repeatable)")
    v = sub.add_parser("validate", help="validate resource YAML files (exit 2 if invalid)")
    v.add_argument("files", nargs="+", type=Path)
    for name in ("train", "caption", "eval"):
        j = sub.add_parser(name, help=f"run a {name} job from its job config")
        j.add_argument("--config", required=True, type=Path)
    r = sub.add_parser("run", help="run a Curriculum or Experiment on this machine (no cluster)")
    r.add_argument("file", type=Path)
    r.add_argument("--runs", type=Path, default=Path("runs"), help="local run root")
    r.add_argument("--storage", help="override storage URI (e.g. s3://bucket/prefix)")
    s = sub.add_parser("stats", help="Table-1 caption statistics of a dataset")
    s.add_argument("dataset")
    s.add_argument("--sample", type=int, default=10_000, help="draw size (Table 1: 10,000)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random draw")
    s.add_argument("--lang", default="auto")
    s.add_argument("--column", default="caption")
    rep = sub.add_parser("report", help="scaling-law report over eval results, or an experiment's")
    rep.add_argument(
        "results", nargs="+", help="results.json files or folders, or Experiment run folders"
    )
    rep.add_argument("--out", type=Path, default=Path("report"))
    g = sub.add_parser("gen-data", help="write a synthetic dataset and benchmarks")
    g.add_argument("out")
    g.add_argument("--samples", type=int, default=1000)
    g.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command")
    d.required = True
    from sailvl.data.commands import add_parsers

    add_parsers(d)
    from sailvl.model import export, layout

    layout.add_arguments(sub.add_parser("convert", help="checkpoint: original InternVL <-> native"))
    export.add_arguments(sub.add_parser("export", help="DeepSpeed step checkpoint -> model folder"))
    from sailvl import plan_cli

    plan_cli.add_arguments(sub.add_parser("plan", help="device-hours of a Curriculum's steps"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["stats", "compare"]:  # its own parser: `stats DATASET` is positional
        from sailvl.quality.compare import main as compare_main

        return compare_main(argv[2:])
    args = _parser().parse_args(argv)
    if args.command == "crds":
        from sailvl.api.crdgen import write_all

        outs = args.out or [Path("crds"), Path("charts/sailvl-operator/crds")]
        for path in write_all(*outs):
            print(path)
        return 0
    if args.command == "validate":
        return _validate(args.files)
    module, func = JOBS[args.command]
    from sailvl.api import SpecError

    try:
        rc = getattr(importlib.import_module(module), func)(args)
    except SpecError as err:
        print("invalid:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    return int(rc or 0)


def _validate(files: Sequence[Path]) -> int:
    import yaml

    from sailvl.api import SpecError, parse_resource
    from sailvl.api.validation import spec_warnings

    rc = 0
    for path in files:
        try:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc is None:
                    continue
                api = str(doc.get("apiVersion", "")) if isinstance(doc, dict) else ""
                if api and not api.startswith("sailvl.io/"):  # e.g. a Secret next to them
                    print(f"{path}: {doc.get('kind')} ({api}) skipped: not a sailvl.io resource")
                    continue
                kind, name, spec = parse_resource(doc)
                for warning in spec_warnings(kind, spec):  # valid, but probably not meant
                    print(f"{path}: warning: {warning}", file=sys.stderr)
                print(f"{path}: {kind}/{name} ok")
        except (OSError, yaml.YAMLError) as err:
            print(f"{path}: cannot read: {err}", file=sys.stderr)
            rc = EXIT_INVALID
        except SpecError as err:
            for problem in err.problems:
                print(f"{path}: {problem}", file=sys.stderr)
            rc = EXIT_INVALID
    return rc


if __name__ == "__main__":
    sys.exit(main())
