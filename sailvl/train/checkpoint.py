"""Step checkpoints in the object store: save, commit, retention, `latest`, resume.

Layout under the stage's output URI:

    step-<n>/<deepspeed files>       engine.save_checkpoint(staging, tag="step-<n>")
    step-<n>/client/rank-<r>.pt      per rank: reader state, RNG states, counters
    step-<n>/_COMMITTED              marker listing every file (written last, rank 0)
    latest                           "step-<n>", written after the marker
    final/                           consolidated HF weights (see `save_final`)
    exports/step-<n>/                interval exports, if asked (`sailvl.train.exports`)

Saving: DeepSpeed writes each rank's shard into a node-local staging folder; after a
barrier, local rank 0 of every node uploads its node's files (rank 0's node also has
the module states), each rank writes its own client state, and after a second barrier
rank 0 commits the unit from the store's own listing, moves `latest`, and deletes the
oldest committed units beyond `keep` (marker first, so a half-deleted unit reads as
absent). A crash anywhere before the marker leaves an uncommitted unit that resume
ignores, and `latest` still names the previous one.

Resume: `latest` -> unit; local rank 0 of each node downloads it to staging; after a
barrier every rank calls `engine.load_checkpoint` (module, optimizer, LR scheduler) and
reads its client state. A ZeRO stage change between stages never comes here: the next
stage starts from `final/` (DeepSpeed refuses ZeRO-2 state under ZeRO-3).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from typing import Any

from sailvl.storage import (
    committed_units,
    is_committed,
    join,
    mark_committed,
    open_store,
    read_latest,
    write_latest,
)

PREFIX = "step-"
FINAL = "final"


def unit_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def unit_step(unit: str) -> int:
    return int(unit.rsplit("/", 1)[-1][len(PREFIX) :])


def retention(units: list[str], keep: int) -> list[str]:
    """The committed step units to delete so that the newest `keep` remain (pure)."""
    ordered = sorted(units, key=unit_step)
    return ordered[: max(0, len(ordered) - keep)]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def _staging(output: str, kind: str) -> str:
    """A node-local folder shared by the node's ranks (same path on each of them)."""
    import hashlib

    key = hashlib.sha1(output.encode()).hexdigest()[:12]
    root = os.environ.get("SAILVL_STAGING_DIR") or os.path.join(tempfile.gettempdir(), "sailvl")
    return os.path.join(root, f"{kind}-{key}")


class Checkpointer:
    """Step checkpoints of one stage (see module docstring)."""

    def __init__(self, output: str, *, rank: int, local_rank: int, keep: int) -> None:
        self.output = output
        self.store = open_store(output)
        self.rank, self.local_rank, self.keep = rank, local_rank, keep

    def final_done(self) -> bool:
        return is_committed(self.store, FINAL)

    def latest(self) -> str | None:
        unit = read_latest(self.store)
        return unit if unit and is_committed(self.store, unit) else None

    def save(self, engine: Any, step: int, client: dict[str, Any]) -> str:
        import torch

        unit = unit_name(step)
        staging = _staging(self.output, "save")
        if self.local_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(staging, exist_ok=True)
        _barrier()
        engine.save_checkpoint(staging, tag=unit, save_latest=False)
        _barrier()
        if self.local_rank == 0:
            base = os.path.join(staging, unit)
            for dirpath, _, files in os.walk(base):
                for name in sorted(files):
                    path = os.path.join(dirpath, name)
                    key = os.path.relpath(path, base).replace(os.sep, "/")
                    with open(path, "rb") as fh:
                        self.store.write_bytes(join(unit, key), fh.read())
        buf = io.BytesIO()
        torch.save(client, buf)
        self.store.write_bytes(join(unit, "client", f"rank-{self.rank}.pt"), buf.getvalue())
        _barrier()
        if self.rank == 0:
            sizes = {
                k[len(unit) + 1 :]: len(self.store.read_bytes(k))
                for k in self.store.list(unit + "/")
            }
            mark_committed(self.store, unit, sizes)
            write_latest(self.store, unit)
            units = [u for u in committed_units(self.store, PREFIX)]
            for old in retention(units, self.keep):
                self.store.delete(join(old, "_COMMITTED"))
                for key in list(self.store.list(old + "/")):
                    self.store.delete(key)
        _barrier()
        if self.local_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
        return join(self.output, unit)

    def load(self, engine: Any, unit: str) -> dict[str, Any]:
        """Restore engine state from `unit`; return this rank's client state."""
        import torch

        staging = _staging(self.output, "load")
        if self.local_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            for key in self.store.list(unit + "/"):
                dest = os.path.join(staging, *key.split("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as fh:
                    fh.write(self.store.read_bytes(key))
        _barrier()
        path, _ = engine.load_checkpoint(
            staging, tag=unit, load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load checkpoint {unit} from {self.output}")
        raw = self.store.read_bytes(join(unit, "client", f"rank-{self.rank}.pt"))
        client = torch.load(io.BytesIO(raw), weights_only=False)
        _barrier()
        if self.local_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
        return dict(client)


def save_final(engine: Any, tokenizer: Any, output: str, *, zero_stage: int, rank: int) -> str:
    """Consolidated HF-format weights at `<output>/final/` (the next stage's init)."""
    return save_model(engine, tokenizer, join(output, FINAL), zero_stage=zero_stage, rank=rank)


def save_model(engine: Any, tokenizer: Any, uri: str, *, zero_stage: int, rank: int) -> str:
    """The engine's current weights as a loadable HF-format folder at `uri` (`final/`,
    and the interval exports of `sailvl.train.exports`).

    Under ZeRO-3 the parameters are gathered on every rank (a collective), and rank 0
    writes them; the commit marker goes last (`sailvl.model.checkpoint`).
    """
    from sailvl.model.checkpoint import save_checkpoint
    from sailvl.train.engine import gathered

    with gathered(engine, zero_stage):
        if rank == 0:
            save_checkpoint(engine.module, tokenizer, uri)
    _barrier()
    return uri


def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch RNG states of this rank."""
    import random

    import numpy as np
    import torch

    out: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
