"""Pure checks of the harness pieces (no binaries needed): certificates chain and carry
the right names, node manifests, the KWOK Stage file, port allocation, process stop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import pki
from tests.cluster.controlplane.harness import HERE, Config, ControlPlane, ControlPlaneUnavailable
from tests.cluster.controlplane.nodes import ASCEND_910, NVIDIA_GPU, NodeSet
from tests.cluster.controlplane.process import Component, free_ports


@pytest.mark.parametrize("backend", ["cryptography", "openssl"])
def test_certificates_chain_to_the_ca(tmp_path: Path, backend: str) -> None:
    if backend == "openssl":
        p = pki.Pki(**{k: tmp_path / v.name for k, v in vars(pki.generate(tmp_path / "x")).items()})
        pki._generate_openssl(p)
    else:
        p = pki.generate(tmp_path)
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate(p.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(p.server_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(p.admin_cert.read_bytes())
    for leaf in (server, admin):
        leaf.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(i) for i in sans.get_values_for_type(x509.IPAddress)]
    org = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in org] == ["system:masters"]
    assert b"PUBLIC KEY" in p.sa_pub.read_bytes()


def test_node_set_manifests() -> None:
    nodes = NodeSet(gpu_nodes=3, ascend_nodes=1, cpu_nodes=0).manifests()
    assert [n["metadata"]["name"] for n in nodes] == [
        "kwok-gpu-0",
        "kwok-gpu-1",
        "kwok-gpu-2",
        "kwok-ascend-0",
    ]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert nodes[0]["status"]["allocatable"][NVIDIA_GPU] == "8"
    assert ASCEND_910 not in nodes[0]["status"]["capacity"]
    assert nodes[3]["metadata"]["labels"]["accelerator-type"] == "module-910b-8"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"gpu_nodes": -1}, "gpu_nodes"), ({"gpu_nodes": 0, "ascend_nodes": 0, "cpu_nodes": 0}, "cpu_nodes"),
     ({"devices_per_node": 0}, "devices_per_node")],
)  # fmt: skip
def test_node_set_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NodeSet(**kwargs)


def test_config_validation_and_missing_binaries(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start_timeout"):
        Config(start_timeout=0)
    with pytest.raises(ValueError, match="extra_args"):
        Config(extra_args={"kubelet": ["--v=2"]})
    cfg = Config(bin_dir=tmp_path)
    assert cfg.missing_binaries() == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ]
    with pytest.raises(ControlPlaneUnavailable, match="build.sh"):
        ControlPlane(cfg).start()


def test_kwok_stages_select_on_the_exit_annotation() -> None:
    stages = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((HERE / "kwok-stages.yaml").read_text())
    }
    assert "pod-complete" not in stages  # pods run until a test decides
    ok, bad = stages["sailvl-pod-exit-success"], stages["sailvl-pod-exit-failure"]
    keys = [e["key"] for e in ok["spec"]["selector"]["matchExpressions"]]
    assert '.metadata.annotations["sailvl.io/kwok-exit"]' in keys
    assert "phase: Succeeded" in ok["spec"]["next"]["statusTemplate"]
    assert "phase: Failed" in bad["spec"]["next"]["statusTemplate"]
    assert "exitCode: {{ $code }}" in bad["spec"]["next"]["statusTemplate"]


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8 and all(p > 0 for p in ports)


def test_component_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    comp = Component(name="stubborn", argv=[sys.executable, "-c", code], log_dir=tmp_path)
    comp.start()
    comp.wait_ready(lambda: "up" in comp.log_path.read_text(), timeout=20)
    t0 = time.monotonic()
    comp.stop(grace=0.5)
    assert comp.proc is not None and comp.proc.returncode == -9
    assert time.monotonic() - t0 < 10


def test_component_reports_an_early_exit_with_its_log(tmp_path: Path) -> None:
    comp = Component(
        name="dies",
        argv=[sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
        log_dir=tmp_path,
    )
    comp.start()
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*boom"):
        comp.wait_ready(lambda: False, timeout=20)


def test_build_script_prints_the_cache_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAILVL_CONTROLPLANE_BIN", raising=False)
    out = subprocess.run(
        ["bash", str(HERE / "build.sh"), "--print-bin"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(Config().bin_dir)


# `kubectl get sailvl -n demo` twice during `make cluster-demo` (as printed, 30 Nov).
SAILVL_T0 = """\
NAME                                PHASE       DONE   SHARDS   SAMPLES   AGE
captionjob.sailvl.io/demo-caption   Succeeded   1      1        9         2m54s

NAME                        PHASE     STEP                 DONE   TOTAL   AGE
curriculum.sailvl.io/demo   Running   pretrain-alignment   1      11      2m57s

NAME                                           PHASE     PRESET               STEP   LOSS      RESTARTS   AGE
trainstage.sailvl.io/demo-pretrain-alignment   Running   pretrain-alignment   17     5.48168   0          119s
"""
SAILVL_T1 = """\
NAME                                PHASE       DONE   SHARDS   SAMPLES   AGE
captionjob.sailvl.io/demo-caption   Succeeded   1      1        9         3m15s

NAME                        PHASE     STEP                 DONE   TOTAL   AGE
curriculum.sailvl.io/demo   Running   pretrain-alignment   1      11      3m18s

NAME                                           PHASE     PRESET               STEP   LOSS       RESTARTS   AGE
trainstage.sailvl.io/demo-pretrain-alignment   Running   pretrain-alignment   25     5.407952   0          2m20s
"""


def test_cluster_demo_follower_prints_the_rows_that_changed() -> None:
    """kubectl refuses `get sailvl -w` (a category of several kinds), so make cluster-demo
    polls and prints changed rows: all at first, then only the TrainStage's new step
    and loss under its header; a poll where only AGE moved prints nothing."""
    from tests.cluster.controlplane.clusterdemo import Follower, table_rows

    cells = [c for _, _, c in table_rows(SAILVL_T1)]
    assert cells[2] == {
        "NAME": "trainstage.sailvl.io/demo-pretrain-alignment", "PHASE": "Running",
        "PRESET": "pretrain-alignment", "STEP": "25", "LOSS": "5.407952", "RESTARTS": "0",
        "AGE": "2m20s",
    }  # fmt: skip
    f = Follower()
    first = f.update(SAILVL_T0)
    assert len(first) == 6 and first[0].startswith("NAME") and "demo-caption" in first[1]
    second = f.update(SAILVL_T1)
    assert [r.split()[0] for r in second] == [
        "NAME",
        "trainstage.sailvl.io/demo-pretrain-alignment",
    ]
    assert "5.407952" in second[1]
    assert f.update(SAILVL_T1.replace("2m20s", "2m25s").replace("3m15s", "3m20s")) == []
