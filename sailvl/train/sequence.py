"""Several stages in one process group: `python -m sailvl.train.sequence A.yaml B.yaml`.

Each stage of a curriculum normally runs as its own `sailvl train` (its own pods). On
one machine (the embedded demo, the CI chain test) most of a short stage's wall time
is process start-up: importing torch, transformers and DeepSpeed in every worker and
the rendezvous. This entry point launches the workers once and runs the job configs
one after another in them, each exactly as `sailvl train --config` would (its own
engine, checkpoints, final/ and status); a later config typically names the earlier
one's final/ as `model.init`, which is only read once that stage has finished.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    import logging
    import os

    from sailvl.train.main import run

    logging.basicConfig(level=os.environ.get("SAILVL_LOG_LEVEL", "INFO"))
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m sailvl.train.sequence JOB.yaml [JOB.yaml ...]", file=sys.stderr)
        return 2
    return run(paths, ["-m", "sailvl.train.sequence", *map(str, paths)])


if __name__ == "__main__":
    sys.exit(main())
