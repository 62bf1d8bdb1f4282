"""`sailvl train --config FILE`: the launcher (one per node) and the worker entry.

In a pod, `sailvl train` starts as ONE process per node. Not inside a torch
distributed worker (no LOCAL_RANK), it is the launcher: it parses the job config,
runs the preflight checks (exit 2 with the message in the TrainStage status on a
config error), waits for rank 0's DNS name on the other nodes, and starts
NPROC_PER_NODE workers with `torch.distributed.run` from the pod env (MASTER_ADDR,
MASTER_PORT, NNODES, NODE_RANK, NPROC_PER_NODE; a local run is one node with
`devicesPerNode` workers). The launcher never imports torch, so a bad config fails in
a second. Each worker re-enters here (LOCAL_RANK set) and runs `loop.train`.

Exit codes: 0 done, 2 configuration error (preflight, or a worker's config error
relayed through SAILVL_ERROR_FILE), anything else a failure worth a restart.
SIGTERM (pod deletion) is forwarded to the workers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sailvl.runtime.device import DeviceError, device_spec, prepare_environment
from sailvl.runtime.env import in_worker, node_env, worker_env
from sailvl.runtime.report import StatusReporter, report_failure, reporter_for
from sailvl.train.config import TrainConfig, from_spec
from sailvl.train.preflight import ConfigError, check
from sailvl.train.schedule import PlanError

log = logging.getLogger("sailvl.train")
EXIT_CONFIG = 2
ERROR_FILE = "SAILVL_ERROR_FILE"


def _load(path: Path) -> tuple[dict[str, Any], Any]:
    from sailvl.api import SpecError
    from sailvl.api.jobconfig import load_job_config

    raw = yaml.safe_load(path.read_text())
    try:
        kind, _, spec = load_job_config(path)
    except SpecError as err:
        if isinstance(raw, dict) and "metadata" in raw:
            _fail(reporter_for(raw), "; ".join(err.problems), "InvalidSpec")
        raise
    if kind != "TrainStage":
        raise SystemExit(f"{path}: job config kind {kind!r} is not TrainStage")
    return raw, spec


def _fail(reporter: StatusReporter, message: str, error: str = "ConfigError") -> int:
    """Report a refused spec (stderr, termination message, status) and give exit 2."""
    log.error("%s: %s", error, message)
    report_failure(reporter, message, error)
    return EXIT_CONFIG


def _config(raw: dict[str, Any], spec: Any, world: int, **extra: Any) -> TrainConfig:
    meta = raw.get("metadata", {})
    return from_spec(
        spec, name=meta["name"], namespace=meta.get("namespace", "default"),
        world_size=world, **extra,
    )  # fmt: skip


def main(args: Any) -> int:
    logging.basicConfig(
        level=os.environ.get("SAILVL_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return run([Path(args.config)], ["-m", "sailvl.cli", "train", "--config", str(args.config)])


def run(paths: list[Path], worker_argv: list[str]) -> int:
    """Launcher or worker for the job configs `paths`, trained one after another in
    the same process group (`worker_argv` re-enters this function in the workers)."""
    jobs = [_load(p) for p in paths]
    prepare_environment(jobs[0][1].accelerator)
    if in_worker():
        rc = worker_main(jobs)
        # Leave without interpreter finalisation: the reader's daemon threads and C++
        # objects (gloo, DeepSpeed) torn down in arbitrary order at exit were seen to
        # abort the process ("terminate called without an active exception") AFTER
        # the stage had finished and committed, turning success into a failed pod.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return launch(jobs, worker_argv)


def launch(jobs: list[tuple[dict[str, Any], Any]], worker_argv: list[str]) -> int:
    """The per-node launcher (see module docstring)."""
    from sailvl.runtime.distributed import launch_command, wait_for_master

    produced: set[str] = set()
    for raw, spec in jobs:
        try:
            node = node_env(default_nproc=spec.devices_per_node)
            cfg = _config(raw, spec, node.world_size)
            check(cfg, produced=frozenset(produced))
        except (ConfigError, PlanError, ValueError) as err:
            return _fail(reporter_for(raw), str(err))
        produced.add(f"{cfg.output.rstrip('/')}/final")
    if node.node_rank != 0:
        wait_for_master(node.master_addr)
    fd, err_file = tempfile.mkstemp(prefix="sailvl-train-error-")
    os.close(fd)
    os.unlink(err_file)
    env = {**os.environ, ERROR_FILE: err_file, "SAILVL_RESTART_ATTEMPT": str(node.restart_attempt)}
    proc = subprocess.Popen(launch_command(node, worker_argv), env=env)
    old = signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    try:
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old)
    if rc != 0 and os.path.exists(err_file):
        os.unlink(err_file)
        return EXIT_CONFIG
    return 0 if rc == 0 else max(1, rc)


def worker_main(jobs: list[tuple[dict[str, Any], Any]]) -> int:
    """One worker: process group, then the loop per job; config errors exit 2."""
    from sailvl.runtime import metrics
    from sailvl.runtime.distributed import destroy, init_process_group
    from sailvl.train.loop import train

    worker = worker_env()
    silent = StatusReporter("TrainStage", "-", "-", sink="none")
    reporter = silent
    try:
        init_process_group(device_spec(jobs[0][1].accelerator), worker)
        restart = int(os.environ.get("SAILVL_RESTART_ATTEMPT", "0") or 0)
        port = int(os.environ.get("SAILVL_METRICS_PORT", metrics.JOB_METRICS_PORT))
        if worker.is_main and port >= 0:
            try:
                metrics.serve(port)
            except OSError as err:
                log.warning("metrics server on port %d not started: %s", port, err)
        for raw, spec in jobs:
            reporter = reporter_for(raw) if worker.is_main else silent
            cfg = _config(raw, spec, worker.world_size, restart_attempt=restart)
            train(cfg, worker, device_spec(spec.accelerator), reporter)
    except (ConfigError, PlanError, DeviceError) as err:
        if worker.is_main:
            _fail(reporter, str(err))
        if os.environ.get(ERROR_FILE):
            Path(os.environ[ERROR_FILE]).write_text(str(err))
        return EXIT_CONFIG
    finally:
        destroy()
    return 0
