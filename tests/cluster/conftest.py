"""The `cluster` fixture: one real control plane with KWOK nodes for the whole session.

The binaries are built by tests/cluster/controlplane/build.sh (CI runs it before the
tests). When they are missing the fixture FAILS with the build command in its message;
set SAILVL_CONTROLPLANE_BUILD=1 to have the fixture run build.sh itself first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.cluster.controlplane.client import Kubectl
from tests.cluster.controlplane.harness import BUILD_SCRIPT, Config, ControlPlane


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    """A started ControlPlane: .kubeconfig, .server, .kubectl (a client.Kubectl with
    apply / get / json / create_namespace / succeed_pod / fail_pod / set_pod_exit)."""
    config = Config(keep_workdir=bool(os.environ.get("SAILVL_KEEP_CLUSTER")))
    if config.missing_binaries() and os.environ.get("SAILVL_CONTROLPLANE_BUILD") == "1":
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True)
    if config.missing_binaries():
        pytest.fail(
            f"control-plane binaries missing in {config.bin_dir}: "
            f"{', '.join(config.missing_binaries())}. Run `bash {BUILD_SCRIPT}` first "
            "(or set SAILVL_CONTROLPLANE_BUILD=1 to build from the fixture).",
            pytrace=False,
        )
    cp = ControlPlane(config)
    cp.start()
    print(f"\ncontrol plane started in {cp.startup_seconds:.1f} s ({cp.workdir})", file=sys.stderr)
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def kubectl(cluster: ControlPlane) -> Kubectl:
    assert cluster.kubectl is not None
    return cluster.kubectl


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test; deleted (without waiting) afterwards."""
    name = kubectl.create_namespace("t")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
