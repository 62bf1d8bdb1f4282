"""The pod environment contract of a distributed job (DESIGN.md section 4), as data.

A TrainStage pod runs ONE `sailvl train` process per node. The operator sets the
torchrun-style variables on it:

    MASTER_ADDR     rank 0's stable DNS name (`<job>-0.<service>`); may not resolve yet
    MASTER_PORT     rendezvous port on rank 0
    NNODES          pods in the group
    NODE_RANK       this pod's index (the Indexed Job's completion index;
                    JOB_COMPLETION_INDEX is accepted as a fallback)
    NPROC_PER_NODE  worker processes (devices) per pod

That process starts NPROC_PER_NODE workers (`torch.distributed.run`), which see the
per-worker variables torchrun sets: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE.
`LOCAL_RANK` present means "I am a worker": the launcher never nests itself.

Outside a cluster every variable may be missing: a local run is one node on 127.0.0.1
with `default_nproc` workers. Parsing is pure (it takes a mapping), so the contract is
unit-tested without touching os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PORT = 29500
RESTART_VARS = ("SAILVL_RESTART_ATTEMPT", "JOBSET_RESTART_ATTEMPT")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {raw!r}") from None


@dataclass(frozen=True, kw_only=True)
class NodeEnv:
    """What the launcher (one per node) needs to start its workers."""

    master_addr: str  # rank 0's host name or address
    master_port: int  # rendezvous TCP port
    nnodes: int  # nodes (pods) in the group
    node_rank: int  # this node's index, 0-based
    nproc_per_node: int  # workers to start on this node
    restart_attempt: int = 0  # restarts of the pod group so far (0 on the first run)

    def __post_init__(self) -> None:
        if not self.master_addr:
            raise ValueError("MASTER_ADDR: must not be empty")
        if not 0 < self.master_port < 65536:
            raise ValueError(f"MASTER_PORT: {self.master_port} is not a TCP port")
        if self.nnodes < 1:
            raise ValueError(f"NNODES: must be >= 1, got {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"NODE_RANK: {self.node_rank} not in [0, NNODES={self.nnodes})")
        if self.nproc_per_node < 1:
            raise ValueError(f"NPROC_PER_NODE: must be >= 1, got {self.nproc_per_node}")

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node


@dataclass(frozen=True, kw_only=True)
class WorkerEnv:
    """What one worker process (set up by torchrun) knows about itself."""

    rank: int  # global rank
    local_rank: int  # rank on this node (device index)
    world_size: int  # all workers
    local_world_size: int  # workers on this node

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"RANK: {self.rank} not in [0, WORLD_SIZE={self.world_size})")
        if not 0 <= self.local_rank < self.local_world_size:
            raise ValueError(f"LOCAL_RANK: {self.local_rank} not in [0, {self.local_world_size})")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def in_worker(env: Mapping[str, str] | None = None) -> bool:
    """True inside a torchrun worker (LOCAL_RANK is set)."""
    env = os.environ if env is None else env
    return "LOCAL_RANK" in env


def node_env(env: Mapping[str, str] | None = None, *, default_nproc: int = 1) -> NodeEnv:
    """Parse the pod contract; missing variables give a single local node."""
    env = os.environ if env is None else env
    rank_default = _int(env, "JOB_COMPLETION_INDEX", 0)
    restart = max((_int(env, name, 0) for name in RESTART_VARS), default=0)
    return NodeEnv(
        master_addr=env.get("MASTER_ADDR") or "127.0.0.1",
        master_port=_int(env, "MASTER_PORT", DEFAULT_PORT),
        nnodes=_int(env, "NNODES", 1),
        node_rank=_int(env, "NODE_RANK", rank_default),
        nproc_per_node=_int(env, "NPROC_PER_NODE", default_nproc),
        restart_attempt=restart,
    )


def worker_env(env: Mapping[str, str] | None = None) -> WorkerEnv:
    """Parse torchrun's per-worker variables (a single process if they are absent)."""
    env = os.environ if env is None else env
    world = _int(env, "WORLD_SIZE", 1)
    return WorkerEnv(
        rank=_int(env, "RANK", 0),
        local_rank=_int(env, "LOCAL_RANK", 0),
        world_size=world,
        local_world_size=_int(env, "LOCAL_WORLD_SIZE", world),
    )
