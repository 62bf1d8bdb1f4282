"""runtime.env (the pod contract), runtime.device (mapping, env prep), runtime.distributed
(launch command, DNS wait)."""

from __future__ import annotations

import pytest

from sailvl.runtime.device import (
    DeviceError,
    check_available,
    device_spec,
    peak_flops,
    prepare_environment,
)
from sailvl.runtime.distributed import launch_command, wait_for_master
from sailvl.runtime.env import NodeEnv, in_worker, node_env, worker_env


def test_node_env_from_pod_contract() -> None:
    env = {
        "MASTER_ADDR": "s-0.s", "MASTER_PORT": "23456", "NNODES": "4",
        "NODE_RANK": "3", "NPROC_PER_NODE": "8", "JOBSET_RESTART_ATTEMPT": "2",
    }  # fmt: skip
    n = node_env(env)
    assert (n.master_addr, n.master_port, n.nnodes, n.node_rank) == ("s-0.s", 23456, 4, 3)
    assert n.world_size == 32 and n.restart_attempt == 2


def test_node_env_local_defaults_and_completion_index() -> None:
    n = node_env({}, default_nproc=2)
    assert (n.master_addr, n.nnodes, n.node_rank, n.nproc_per_node) == ("127.0.0.1", 1, 0, 2)
    assert node_env({"NNODES": "3", "JOB_COMPLETION_INDEX": "2"}).node_rank == 2


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK"),
        ({"MASTER_PORT": "0"}, "MASTER_PORT"),
        ({"NPROC_PER_NODE": "x"}, "NPROC_PER_NODE"),
        ({"NNODES": "0"}, "NNODES"),
    ],
)
def test_node_env_errors_name_the_variable(env: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        node_env(env)


def test_worker_env() -> None:
    w = worker_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"})
    assert (w.rank, w.local_rank, w.world_size, w.is_main) == (3, 1, 4, False)
    assert in_worker({"LOCAL_RANK": "0"}) and not in_worker({})
    with pytest.raises(ValueError, match="RANK"):
        worker_env({"RANK": "4", "WORLD_SIZE": "4"})


@pytest.mark.parametrize(
    ("acc", "dev", "backend"),
    [("nvidia", "cuda", "nccl"), ("ascend", "npu", "hccl"), ("cpu", "cpu", "gloo")],
)
def test_device_mapping(acc: str, dev: str, backend: str) -> None:
    s = device_spec(acc)
    assert (s.device_type, s.backend, s.ds_accelerator) == (dev, backend, dev)


def test_prepare_environment_disables_autoload_except_on_ascend() -> None:
    env: dict[str, str] = {}
    prepare_environment("cpu", env)
    assert env["TORCH_DEVICE_BACKEND_AUTOLOAD"] == "0" and env["DS_ACCELERATOR"] == "cpu"
    assert env["DS_BUILD_OPS"] == "0"
    env = {}
    prepare_environment("ascend", env)
    assert "TORCH_DEVICE_BACKEND_AUTOLOAD" not in env and env["DS_ACCELERATOR"] == "npu"


def test_ascend_without_torch_npu_is_a_config_error() -> None:
    import importlib.util

    if importlib.util.find_spec("torch_npu") is not None:
        pytest.skip("torch_npu is installed here")
    with pytest.raises(DeviceError, match="torch_npu"):
        check_available("ascend")
    check_available("cpu")


def test_peak_flops_override() -> None:
    assert peak_flops(device_spec("cpu"), {"SAILVL_PEAK_FLOPS": "1e12"}) == 1e12
    assert peak_flops(device_spec("cpu"), {}) is None
    assert peak_flops(device_spec("ascend"), {}) == 313e12


def test_launch_command() -> None:
    node = NodeEnv(master_addr="m", master_port=1234, nnodes=2, node_rank=1, nproc_per_node=8)
    cmd = launch_command(node, ["-m", "sailvl.cli", "train"], python="py")
    assert cmd[:3] == ["py", "-m", "torch.distributed.run"]
    for arg in ("--nnodes=2", "--node-rank=1", "--nproc-per-node=8", "--master-addr=m",
                "--master-port=1234", "--max-restarts=0"):  # fmt: skip
        assert arg in cmd
    assert cmd[-3:] == ["-m", "sailvl.cli", "train"]


def test_wait_for_master_retries_until_dns_resolves() -> None:
    calls, sleeps = [], []

    def resolve(addr: str) -> str:
        calls.append(addr)
        if len(calls) < 3:
            raise OSError("Name or service not known")
        return "10.0.0.1"

    assert wait_for_master("m-0.s", resolve=resolve, sleep=sleeps.append, interval=0.01)
    assert len(calls) == 3 and len(sleeps) == 2


def test_wait_for_master_times_out_naming_the_address() -> None:
    def never(addr: str) -> str:
        raise OSError("nope")

    with pytest.raises(TimeoutError, match="m-0.s"):
        wait_for_master("m-0.s", timeout=0.0, resolve=never, sleep=lambda s: None)
