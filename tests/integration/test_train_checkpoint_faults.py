"""A training stage's step checkpoints (`sailvl.train.checkpoint.Checkpointer` over a
real DeepSpeed engine) on SeaweedFS through injected faults (issue 17 section 3).

One worker process (DeepSpeed on CPU, ZeRO-1, world size 1 over gloo; a two-layer model
so it starts in seconds) saves steps 1 and 2 (keep 1: step 1 is deleted by retention),
zeroes its weights and loads `latest`, all through `tests.fixtures.faultproxy` at 5 %.
It then waits on its stdin while the test turns the proxy to 100 %, and saves step 3.

Checked: the load restores exactly the weights of step 2 and its client state; the
worker's own `sailvl_storage_retries_total` grew by at least the faults injected; the
step-3 save fails within a bounded time with an error naming the object; on SeaweedFS
itself `latest` still names step 2, whose marker lists exactly its objects with their
sizes, step 1 is gone and step 3 has no marker (a resume ignores it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.s3server import S3Server, assert_server_is_expected
from tests.integration.test_s3_faults import READ_TIMEOUT_S, upstream_objects

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).parents[2]

WORKER = r"""
import hashlib, json, sys, time
import torch
from sailvl.train.checkpoint import Checkpointer
from sailvl.train.engine import build_engine, ds_config

def digest(engine):
    h = hashlib.sha256()
    for name, p in sorted(engine.module.state_dict().items()):
        h.update(name.encode()); h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()

def retries():
    from prometheus_client import REGISTRY
    return sum(s.value for m in REGISTRY.collect() for s in m.samples
               if s.name == "sailvl_storage_retries_total")

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 16))
cfg = ds_config(zero_stage=1, precision="fp32", lr=1e-2, betas=(0.9, 0.95),
                weight_decay=0.0, grad_clip=1.0, world_size=1, torch_adam=True)
engine = build_engine(model, cfg, lambda s: 1.0, 0.0)
ck = Checkpointer(sys.argv[1], rank=0, local_rank=0, keep=1)
def train_and_save(step):
    loss = engine(torch.ones(4, 256)).square().mean()
    engine.backward(loss, scale_wrt_gas=False)
    engine.step()
    ck.save(engine, step, {"step": step})
    return digest(engine)
print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()  # the test has started the proxy's 5 % phase
saved = [train_and_save(1), train_and_save(2)]
with torch.no_grad():
    for p in engine.module.parameters():
        p.zero_()
unit = ck.latest()
client = ck.load(engine, unit)
print(json.dumps({"unit": unit, "client": client, "same": digest(engine) == saved[1],
                  "retries": retries()}), flush=True)
sys.stdin.readline()  # the proxy now fails every request
t0 = time.monotonic()
try:
    train_and_save(3)
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}",
                      "took": time.monotonic() - t0}), flush=True)
    sys.exit(3)
print(json.dumps({"error": None}), flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_step_checkpoints_under_5pct_then_100pct_faults(
    s3_env: str, s3_server: S3Server, tmp_path: Path
) -> None:
    assert_server_is_expected(s3_server)
    uri = f"s3://{s3_env}/stage"
    with fault_proxy(s3_server.endpoint, rate=0.0, seed=42, stall_s=3.0) as proxy:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "S3_ENDPOINT_URL": proxy.endpoint,
            "SAILVL_S3_READ_TIMEOUT": str(READ_TIMEOUT_S),
            "SAILVL_S3_CONNECT_TIMEOUT": str(READ_TIMEOUT_S),
            "SAILVL_STAGING_DIR": str(tmp_path / "staging"),
            "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
        }  # fmt: skip
        log = tmp_path / "worker.log"  # a file, not a pipe nobody drains while it runs
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", WORKER, uri], cwd=ROOT, env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None

        def answer() -> dict[str, object]:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, log.read_text()[-3000:]
            return dict(json.loads(line))

        try:
            assert answer() == {"ready": True}
            proxy.rate = 0.05
            proc.stdin.write("\n")
            proc.stdin.flush()
            loaded = answer()
            injected = sum(proxy.injected.values())
            proxy.rate = 1.0
            proc.stdin.write("\n")
            proc.stdin.flush()
            t0 = time.monotonic()
            failed = answer()
            took = time.monotonic() - t0
            assert proc.wait(timeout=60) == 3
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"\nloaded {loaded}; faults before the cut {injected}; failed {failed} in {took:.1f} s")
    assert loaded["unit"] == "step-00000002" and loaded["client"] == {"step": 2}
    assert loaded["same"] is True  # exactly the weights saved at step 2
    assert injected > 0 and float(loaded["retries"]) >= injected  # type: ignore[arg-type]
    error = str(failed["error"])
    assert f"{uri}/step-00000003/" in error and "attempts" in error, error
    assert took < 90
    got = upstream_objects(s3_server, s3_env)
    assert got["stage/latest"] == b"step-00000002"
    marker = json.loads(got["stage/step-00000002/_COMMITTED"])["files"]
    step2 = {k[len("stage/step-00000002/") :]: len(v) for k, v in got.items()
             if k.startswith("stage/step-00000002/") and not k.endswith("_COMMITTED")}  # fmt: skip
    assert marker == step2 and "mp_rank_00_model_states.pt" in step2
    assert not [k for k in got if k.startswith("stage/step-00000001/")]
    assert "stage/step-00000003/_COMMITTED" not in got
