"""Start a real Kubernetes control plane with KWOK fake nodes, as plain processes.

The binaries come from ``build.sh`` (Go modules, cached outside the repository). Start
order and readiness, each on its own free loopback port, in a temporary folder:

1. certificates and an admin kubeconfig (``pki.py``);
2. etcd (``/health``);
3. kube-apiserver with RBAC and service-account token signing (``/readyz`` with the
   admin client certificate);
4. kube-controller-manager (each controller with its own service-account credentials,
   so the token path is exercised; garbage collector and Job controller included) and
   kube-scheduler (``/healthz``);
5. kwok (``/healthz``) with the Stages of ``kwok-stages.yaml``, then the fake nodes
   (``nodes.py``) until all are Ready, and the ``default`` service account;
6. with ``real_node`` set: a real worker node (``realnode.py``: containerd, kubelet,
   kube-proxy, CoreDNS; its bridge is made before the API server starts, which then
   listens on all addresses and runs the Node authorizer). The KWOK nodes are tainted
   then, so pods without a toleration land on the real node.

``stop()`` stops the real node first (undoing its host changes), then the components in
reverse order by PID. A person can run ``python -m tests.cluster.controlplane.harness
[--real-node]`` to get a cluster and its KUBECONFIG.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from .client import Kubectl, wait_for
from .nodes import NodeSet
from .pki import generate, write_kubeconfig
from .process import Component, free_ports, http_ok, insecure_context
from .realnode import RealNode, RealNodeConfig

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ControlPlaneUnavailable(RuntimeError):
    """The control-plane binaries are missing: run build.sh first."""


def versions() -> dict[str, str]:
    """The pinned versions from versions.env (the cache key of build.sh)."""
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def default_bin_dir() -> Path:
    """Where build.sh puts the binaries: $SAILVL_CONTROLPLANE_BIN overrides it."""
    if os.environ.get("SAILVL_CONTROLPLANE_BIN"):
        return Path(os.environ["SAILVL_CONTROLPLANE_BIN"])
    v = versions()
    cache = Path(os.environ.get("SAILVL_CACHE") or Path.home() / ".cache" / "sailvl")
    key = (
        f"etcd-{v['ETCD_VERSION']}_kube-{v['KUBE_VERSION']}-node_kwok-{v['KWOK_VERSION']}"
        f"_coredns-{v['COREDNS_VERSION']}"
    )
    return cache / "controlplane" / key / "bin"


@dataclass(kw_only=True)
class Config:
    """How to start the control plane."""

    bin_dir: Path = field(default_factory=default_bin_dir)  # folder with the 5 binaries
    workdir: Path | None = None  # data, certs, logs; None: a fresh temp folder
    keep_workdir: bool = False  # leave workdir on disk after stop (for debugging)
    nodes: NodeSet = field(default_factory=NodeSet)  # the KWOK fake nodes
    start_timeout: float = 120.0  # seconds for each component to become ready
    verbosity: int = 1  # klog -v for the kube components
    stages: Path = HERE / "kwok-stages.yaml"  # kwok --config file (Stage documents)
    # Extra flags appended per component, e.g. {"kube-apiserver": ["--feature-gates=..."]}.
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    real_node: RealNodeConfig | None = None  # a real worker node too (realnode.py)

    def __post_init__(self) -> None:
        if self.start_timeout <= 0:
            raise ValueError(f"start_timeout must be > 0, got {self.start_timeout}")
        if not 0 <= self.verbosity <= 10:
            raise ValueError(f"verbosity must be in 0..10, got {self.verbosity}")
        unknown = sorted(set(self.extra_args) - set(BINARIES))
        if unknown:
            raise ValueError(f"extra_args: unknown components {unknown}; known: {list(BINARIES)}")

    def missing_binaries(self) -> list[str]:
        missing = [b for b in BINARIES if not os.access(self.bin_dir / b, os.X_OK)]
        if self.real_node is not None:
            missing += self.real_node.missing(self.bin_dir)
        return missing


class ControlPlane:
    """A running control plane. Use as a context manager, or call start() / stop()."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.components: list[Component] = []
        self.workdir = Path()
        self.kubeconfig = Path()
        self.server = ""
        self.startup_seconds = 0.0
        self.kubectl: Kubectl | None = None
        self.node: RealNode | None = None
        self._own_workdir = False

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        missing = cfg.missing_binaries()
        if missing:
            raise ControlPlaneUnavailable(
                f"control-plane binaries missing in {cfg.bin_dir}: {', '.join(missing)}. "
                "Build them with tests/cluster/controlplane/build.sh (Go modules; the cold "
                "build takes tens of minutes on 2 cores, later runs reuse the cache); a real "
                "node also needs install-node-tools.sh and build-images.sh (`make tools`)."
            )
        t0 = time.monotonic()
        self._own_workdir = cfg.workdir is None
        self.workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="sailvl-cp-"))
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def stop(self) -> None:
        """Stop the real node (undoing its host changes), then every started component
        by PID, newest first; remove a temp workdir."""
        if self.node is not None:
            self.node.stop()
            self.node = None
        for comp in reversed(self.components):
            comp.stop()
        self.components.clear()
        if self._own_workdir and not self.config.keep_workdir and self.workdir.name:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _start_all(self) -> None:
        cfg, wd = self.config, self.workdir
        pki = generate(wd / "pki")
        network = ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                   "--authorization-mode=RBAC", "--endpoint-reconciler-type=none"]  # fmt: skip
        if cfg.real_node is not None:
            self.node = RealNode(cfg.real_node, wd, cfg.bin_dir)
            self.node.prepare_host()
            network = cfg.real_node.apiserver_args(pki)
        etcd_port, etcd_peer, api_port, kcm_port, sched_port, kwok_port = free_ports(6)
        self.server = f"https://127.0.0.1:{api_port}"
        self.kubeconfig = write_kubeconfig(pki, self.server, wd / "kubeconfig")
        kc, v = str(self.kubeconfig), f"--v={cfg.verbosity}"
        b = cfg.bin_dir

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        etcd = self._launch("etcd", [
            str(b / "etcd"), "--name=default", f"--data-dir={wd / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}", "--unsafe-no-fsync=true",
            "--log-level=warn", "--quota-backend-bytes=2147483648",
        ])  # fmt: skip
        etcd.wait_ready(lambda: http_ok(f"{etcd_url}/health", expect="true"), cfg.start_timeout)

        api = self._launch("kube-apiserver", [
            str(b / "kube-apiserver"), f"--etcd-servers={etcd_url}", *network,
            f"--secure-port={api_port}", f"--cert-dir={wd / 'apiserver-certs'}",
            f"--tls-cert-file={pki.server_cert}", f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            "--profiling=false", v,
        ])  # fmt: skip
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        api.wait_ready(lambda: http_ok(f"{self.server}/readyz", ctx), cfg.start_timeout)

        anon = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"
        kcm = self._launch("kube-controller-manager", [
            str(b / "kube-controller-manager"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}", anon,
            "--bind-address=127.0.0.1", f"--secure-port={kcm_port}",
            f"--cert-dir={wd / 'kcm-certs'}", "--leader-elect=false",
            "--controllers=*", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_cert}",
            "--concurrent-gc-syncs=5", v,
        ])  # fmt: skip
        sched = self._launch("kube-scheduler", [
            str(b / "kube-scheduler"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}", anon,
            "--bind-address=127.0.0.1", f"--secure-port={sched_port}",
            f"--cert-dir={wd / 'scheduler-certs'}", "--leader-elect=false", v,
        ])  # fmt: skip
        kwok = self._launch("kwok", [
            str(b / "kwok"), f"--kubeconfig={kc}", f"--config={cfg.stages}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1", f"--node-port={kwok_port}", "--cidr=10.0.0.1/16",
            f"--server-address=127.0.0.1:{kwok_port}", "--node-lease-duration-seconds=40",
        ])  # fmt: skip
        insecure = insecure_context()
        for comp, port in ((kcm, kcm_port), (sched, sched_port)):
            url = f"https://127.0.0.1:{port}/healthz"
            comp.wait_ready(partial(http_ok, url, insecure), cfg.start_timeout)
        kwok.wait_ready(lambda: http_ok(f"http://127.0.0.1:{kwok_port}/healthz"), cfg.start_timeout)

        self.kubectl = kubectl = Kubectl(self.kubeconfig)
        nodes = replace(cfg.nodes, taint=True) if cfg.real_node else cfg.nodes
        kubectl.apply(*nodes.manifests())
        names = set(nodes.names())

        def nodes_ready() -> bool:
            kwok.check_alive()
            kcm.check_alive()
            ready = set()
            for node in kubectl.json("get", "nodes")["items"]:
                conds = node.get("status", {}).get("conditions", [])
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    ready.add(node["metadata"]["name"])
            return names <= ready

        wait_for(nodes_ready, timeout=cfg.start_timeout, what=f"nodes Ready: {sorted(names)}")
        wait_for(
            lambda: kubectl.get("serviceaccount", "default", "default"),
            timeout=cfg.start_timeout,
            what="serviceaccount default/default (service-account controller)",
        )
        if self.node is not None:
            self.node.start(pki, self.server, self.kubeconfig, cfg.start_timeout)

    def _launch(self, name: str, argv: list[str]) -> Component:
        argv = argv + self.config.extra_args.get(name, [])
        comp = Component(name=name, argv=argv, log_dir=self.workdir / "logs")
        self.components.append(comp)
        comp.start()
        return comp


def _interrupt(signum: int, frame: object) -> None:
    # A second signal must not cut stop() short: a real node would leave its
    # processes, iptables chains and sysctls behind.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt  # SIGTERM / SIGHUP stop the components like Ctrl-C


def stop_on_signals() -> None:
    """SIGTERM, SIGHUP and SIGINT (even when started with & in a script, which ignores
    it) raise KeyboardInterrupt once, so the caller's ``finally`` stops the cluster."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _interrupt)


def main(argv: list[str] | None = None) -> int:
    """Start a cluster, print its KUBECONFIG, and keep it up until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep data, certs and logs here")
    parser.add_argument(
        "--real-node", action="store_true", help="add a real worker node (root; make tools)"
    )
    args = parser.parse_args(argv)
    real = RealNodeConfig() if args.real_node else None
    cp = ControlPlane(
        Config(workdir=args.workdir, keep_workdir=args.workdir is not None, real_node=real)
    )

    stop_on_signals()
    try:
        cp.start()
    except ControlPlaneUnavailable as err:
        print(err, file=sys.stderr)
        return 2
    try:
        print(f"control plane ready in {cp.startup_seconds:.1f} s; logs in {cp.workdir / 'logs'}")
        print(f"export KUBECONFIG={cp.kubeconfig}")
        print("Ctrl-C stops it.", flush=True)
        while True:
            for comp in cp.components:
                comp.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        return 0
    finally:
        cp.stop()


if __name__ == "__main__":
    sys.exit(main())
