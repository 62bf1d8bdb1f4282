"""Distributed start-up: the per-node launcher command and the process-group init.

Two halves, matching the pod contract (`sailvl.runtime.env`):

- `launch_command(node, argv)` (pure) builds the `torch.distributed.run` command the
  per-node `sailvl train` process runs to start its NPROC_PER_NODE workers. Static
  rendezvous (`--rdzv-backend static`-style via --master-addr/--master-port): rank 0's
  TCPStore is the meeting point, so no etcd and no extra service is needed.
- `wait_for_master(addr)` retries name resolution of MASTER_ADDR. In an Indexed Job the
  other pods often start before rank 0's DNS record exists (headless Service records
  appear once the pod has an IP); a worker that tries to connect then fails at once
  with "Name or service not known", the most reported failure of such jobs. Waiting for
  the name first, with backoff, turns that race into a delay.
- `init_process_group(spec, worker)` initialises torch.distributed with the device's
  backend (nccl / hccl / gloo) and retries a failed rendezvous a few times: TCPStore
  connect errors during a group restart are transient.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sailvl.runtime.device import DeviceSpec
from sailvl.runtime.env import NodeEnv, WorkerEnv

log = logging.getLogger(__name__)


def launch_command(node: NodeEnv, argv: Sequence[str], *, python: str | None = None) -> list[str]:
    """`python -m torch.distributed.run ... <argv>` for this node (pure).

    `--max-restarts 0`: a failed worker fails the pod, and the pod group restart (with
    resume from the newest checkpoint) is the one recovery path, owned by the operator.
    """
    return [
        python or sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={node.nnodes}",
        f"--node-rank={node.node_rank}",
        f"--nproc-per-node={node.nproc_per_node}",
        f"--master-addr={node.master_addr}",
        f"--master-port={node.master_port}",
        "--max-restarts=0",
        *argv,
    ]


def wait_for_master(
    addr: str,
    *,
    timeout: float = 600.0,
    interval: float = 2.0,
    resolve: Callable[[str], Any] = socket.gethostbyname,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Retry resolving `addr` until it resolves or `timeout` seconds passed.

    Returns True once resolved; raises TimeoutError naming the address otherwise.
    """
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        try:
            resolve(addr)
            return True
        except OSError as err:
            attempt += 1
            if time.monotonic() + interval > deadline:
                raise TimeoutError(
                    f"MASTER_ADDR {addr!r} did not resolve within {timeout:.0f}s: {err}"
                ) from None
            log.info("MASTER_ADDR %s not resolvable yet (attempt %d): %s", addr, attempt, err)
            sleep(min(interval * attempt, 30.0))


def init_process_group(
    spec: DeviceSpec,
    worker: WorkerEnv,
    *,
    timeout: timedelta = timedelta(minutes=30),
    retries: int = 3,
    backoff: float = 5.0,
) -> None:
    """torch.distributed.init_process_group over env://, with rendezvous retries."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    for attempt in range(1, retries + 1):
        try:
            dist.init_process_group(
                backend=spec.backend,
                init_method="env://",
                rank=worker.rank,
                world_size=worker.world_size,
                timeout=timeout,
            )
            return
        except (RuntimeError, OSError, ValueError) as err:  # DistStoreError is a RuntimeError
            if attempt == retries:
                raise
            log.warning("rendezvous attempt %d/%d failed: %s", attempt, retries, err)
            time.sleep(backoff * attempt)


def destroy() -> None:
    """Tear the process group down if there is one (end of a job, or a test)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
