"""A real worker node next to the KWOK ones: real containers from the project's images.

Pieces, all plain processes started and stopped by PID (``process.Component``), all
state in ``<workdir>/node`` except containerd's content store (see ``containerd_root``):

- a Linux bridge (``sailvl0``) holding the pod subnet's first address, the gateway; the
  CNI ``bridge`` + ``host-local`` plugins (Debian's containernetworking-plugins) put each
  pod on it with a veth, masquerade pod traffic leaving the subnet, and hairpin;
- containerd (Debian's 1.6) with runc, its own socket and config. The CI machines lack
  CAP_SYS_RESOURCE, so ``restrict_oom_score_adj`` keeps containerd from asking runc
  for negative OOM scores (runc would fail every sandbox); crun rejects their hybrid
  cgroup layout, hence runc. No registry is reachable: the images come from OCI archives
  (``build-images.sh``) imported into containerd's ``k8s.io`` namespace, the pause image
  included, so pods with ``imagePullPolicy: IfNotPresent`` never pull;
- kubelet (built with the control plane by ``build.sh``) with a client certificate for
  ``system:node:<name>`` (the API server runs the Node authorizer and NodeRestriction),
  cgroupfs driver, ``failCgroupV1: false`` (kubelet >= 1.35 refuses cgroup v1 otherwise),
  x509 authentication of the API server's client certificate so ``kubectl logs`` and
  ``exec`` work, and the node IP = the gateway, the only address it serves on;
- CoreDNS on the host bound to the gateway, port 53 (the ``clusterDNS`` kubelet writes
  into every pod's resolv.conf): the kubernetes plugin answers ``*.svc.cluster.local``,
  headless Services and pod hostnames included; nothing is forwarded off the machine;
- kube-proxy in iptables mode, so ``10.96.0.1:443`` (the ``kubernetes`` Service, in the
  API server certificate's SANs) leads to the API server, which listens on all addresses
  and advertises the gateway. Without it that traffic would leave through the host's
  default route.

The KWOK nodes are tainted in a cluster with a real node, so pods that do not tolerate
the taint land on the real node; accelerator resources exist only on KWOK nodes.
:class:`~.hoststate.HostState` undoes the node's changes to the machine at stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from .hoststate import HostState
from .pki import Pki, sign_client, write_kubeconfig
from .process import Component, ComponentError, free_ports, http_ok

HERE = Path(__file__).resolve().parent
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns")
HOST_TOOLS = ("containerd", "ctr", "runc", "iptables", "ip")
CNI_BIN = Path("/usr/lib/cni")
PAUSE_IMAGE = "localhost/pause:3.10"
#: Label of the real node (tests select on it); the KWOK nodes carry ``type=kwok``.
REAL_NODE_LABEL = ("sailvl.io/node", "real")


def cache_dir() -> Path:
    return Path(os.environ.get("SAILVL_CACHE") or Path.home() / ".cache" / "sailvl")


@dataclass(frozen=True, kw_only=True)
class RealNodeConfig:
    """One real worker node."""

    name: str = "real-0"  # Node name (kubelet --hostname-override)
    bridge: str = "sailvl0"  # Linux bridge of the pod network
    subnet: str = "10.244.0.0/24"  # pod IPs; the first address is the bridge (gateway)
    image_dir: Path = field(default_factory=lambda: cache_dir() / "images" / "oci")
    # containerd's content store and snapshots: outside the temp workdir so imported
    # images survive between runs (an import of the job image takes about a minute).
    containerd_root: Path = field(default_factory=lambda: cache_dir() / "realnode" / "containerd")

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        if net.version != 4 or net.prefixlen > 28:
            raise ValueError(f"subnet must be an IPv4 network of /28 or larger, got {self.subnet}")

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[1])

    def missing(self, bin_dir: Path) -> list[str]:
        """Binaries and tools the node needs that are not there."""
        out = [b for b in NODE_BINARIES if not os.access(bin_dir / b, os.X_OK)]
        out += [t for t in HOST_TOOLS if not any(
            os.access(Path(d) / t, os.X_OK) for d in ("/usr/bin", "/usr/sbin", "/sbin", "/bin")
        )]  # fmt: skip
        out += [f"{CNI_BIN}/{p}" for p in ("bridge", "host-local") if not (CNI_BIN / p).exists()]
        if not (self.image_dir / "pause.tar").is_file():
            out.append(f"{self.image_dir}/pause.tar (build-images.sh)")
        return out

    def apiserver_args(self, pki: Pki) -> list[str]:
        """kube-apiserver flags a real node needs (replacing the loopback-only ones)."""
        return [
            "--bind-address=0.0.0.0",  # pods reach it through the gateway
            f"--advertise-address={self.gateway}",  # the `kubernetes` Service endpoint
            "--endpoint-reconciler-type=lease",  # ... kept by the API server itself
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--kubelet-preferred-address-types=InternalIP,Hostname",  # logs / exec
            f"--kubelet-client-certificate={pki.admin_cert}",
            f"--kubelet-client-key={pki.admin_key}",
        ]


class RealNode:
    """The running node: prepare_host() before the API server starts, then start()."""

    def __init__(self, config: RealNodeConfig, workdir: Path, bin_dir: Path) -> None:
        self.config = config
        self.dir = workdir / "node"
        self.bin_dir = bin_dir
        self.components: list[Component] = []
        self.host: HostState | None = None
        self._lock: IO[str] | None = None
        # The host as it was before this node (kept after stop, for tests to compare).
        self.host_before: HostState | None = None
        self.socket = self.dir / "run" / "containerd.sock"

    # -- lifecycle -------------------------------------------------------------------

    def prepare_host(self) -> None:
        """Take the host (wait for another real node on it to stop), snapshot it, then
        create the bridge (CoreDNS binds its address)."""
        cfg = self.config
        self.dir.mkdir(parents=True, exist_ok=True)
        self._take_host()
        self.host = HostState.snapshot(self.dir, cfg.bridge)
        self.host_before = self.host
        if not self.host.bridge_existed:
            _sh("ip", "link", "add", cfg.bridge, "type", "bridge")
        prefix = ipaddress.ip_network(cfg.subnet).prefixlen
        _sh("ip", "addr", "replace", f"{cfg.gateway}/{prefix}", "dev", cfg.bridge)
        _sh("ip", "link", "set", cfg.bridge, "up")

    def start(self, pki: Pki, server: str, admin_kubeconfig: Path, timeout: float) -> None:
        self._start_containerd(timeout)
        self._import_images()
        self._start_coredns(admin_kubeconfig, timeout)
        self._start_kubelet(pki, server, admin_kubeconfig, timeout)
        self._start_kube_proxy(admin_kubeconfig, timeout)

    def stop(self) -> None:
        """Stop kube-proxy, kubelet, every container, containerd and CoreDNS by PID,
        then undo the host changes. Pods are not deleted through the API: the control
        plane stops right after, and killing the containers is faster and also works
        when kubelet is already gone."""
        comps = {c.name: c for c in self.components}
        if "kube-proxy" in comps:
            comps["kube-proxy"].stop()
            subprocess.run(
                [str(self.bin_dir / "kube-proxy"), "--cleanup", "--proxy-mode=iptables"],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip
        if "kubelet" in comps:
            comps["kubelet"].stop()
        if "containerd" in comps:
            self._kill_containers()
            comps["containerd"].stop()
        self._kill_shims()
        if "coredns" in comps:
            comps["coredns"].stop()
        self.components.clear()
        if self.host is not None:
            self.host.restore()
            self.host = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- pieces ------------------------------------------------------------------------

    def _take_host(self) -> None:
        """One real node per host and content store: the bridge, the iptables chains,
        port 53 on the gateway and containerd's root are host-wide, and a second node
        would corrupt them. The lock (``flock`` on ``<containerd_root>/.lock``) is held
        until stop; a second node (another test session, ``make cluster-demo``) waits
        for it, up to ``SAILVL_REALNODE_WAIT`` seconds (default 3600), then fails naming
        the lock. The kernel drops the lock when its holder dies, so none goes stale."""
        root = self.config.containerd_root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = open(root / ".lock", "w")  # noqa: SIM115
        wait = float(os.environ.get("SAILVL_REALNODE_WAIT", "3600"))
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError as err:
                if time.monotonic() > deadline:
                    self._lock.close()
                    self._lock = None
                    msg = f"{root}/.lock: another real node held this host for {wait:.0f} s"
                    raise ComponentError(msg) from err
                if not told:
                    print(f"realnode: waiting for another real node on this host ({root}/.lock)")
                    told = True
                time.sleep(2)

    def _launch(self, name: str, argv: list[str]) -> Component:
        comp = Component(name=name, argv=argv, log_dir=self.dir / "logs")
        self.components.append(comp)
        comp.start()
        return comp

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", "-a", str(self.socket), "-n", "k8s.io", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=600)

    def _start_containerd(self, timeout: float) -> None:
        cfg, d = self.config, self.dir
        (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": "sailvl-pods",
            "plugins": [
                {
                    "type": "bridge", "bridge": cfg.bridge, "isGateway": True,
                    "ipMasq": True, "hairpinMode": True,
                    "ipam": {
                        "type": "host-local", "dataDir": str(d / "cni" / "ipam"),
                        "ranges": [[{"subnet": cfg.subnet, "gateway": cfg.gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }  # fmt: skip
        (d / "cni" / "net.d" / "10-sailvl.conflist").write_text(json.dumps(conflist))
        (d / "containerd.toml").write_text(
            (HERE / "containerd.toml")
            .read_text()
            .format(root=cfg.containerd_root, dir=d, socket=self.socket, pause=PAUSE_IMAGE)
        )
        comp = self._launch("containerd", ["containerd", "--config", str(d / "containerd.toml")])
        comp.wait_ready(lambda: self._ctr("version", check=False).returncode == 0, timeout)

    def _import_images(self) -> None:
        """Import every OCI archive whose image id differs from the one imported last."""
        stamps = self.config.containerd_root / "imported"
        stamps.mkdir(exist_ok=True)
        listed = self._ctr("images", "ls", "-q").stdout.split()
        for archive in sorted(self.config.image_dir.glob("*.tar")):
            image_id = archive.with_suffix(".id").read_text().strip()
            stamp = stamps / archive.with_suffix(".id").name
            names = _archive_names(archive)
            if (
                stamp.is_file()
                and stamp.read_text().strip() == image_id
                and set(names) <= set(listed)
            ):
                continue
            self._ctr("images", "import", str(archive))
            stamp.write_text(image_id)

    def _start_coredns(self, admin_kubeconfig: Path, timeout: float) -> None:
        health, ready = free_ports(2)
        corefile = self.dir / "Corefile"
        corefile.write_text(
            (HERE / "Corefile")
            .read_text()
            .format(gateway=self.config.gateway, health=health, ready=ready, kc=admin_kubeconfig)
        )
        comp = self._launch("coredns", [str(self.bin_dir / "coredns"), "-conf", str(corefile)])
        comp.wait_ready(lambda: http_ok(f"http://127.0.0.1:{ready}/ready"), timeout)

    def _start_kubelet(self, pki: Pki, server: str, admin_kc: Path, timeout: float) -> None:
        cfg, d = self.config, self.dir
        cert, key = d / "kubelet-client.crt", d / "kubelet-client.key"
        sign_client(pki, f"system:node:{cfg.name}", "system:nodes", cert, key)
        kubeconfig = write_kubeconfig(pki, server, d / "kubelet.kubeconfig", cert, key)
        (healthz,) = free_ports(1)
        config = yaml.safe_load((HERE / "kubelet-config.yaml").read_text())
        config.update(
            address=cfg.gateway,
            healthzPort=healthz,
            clusterDNS=[cfg.gateway],
            containerRuntimeEndpoint=f"unix://{self.socket}",
            imageServiceEndpoint=f"unix://{self.socket}",
            podLogsDir=str(d / "pod-logs"),
            authentication={
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
        )
        (d / "kubelet-config.yaml").write_text(yaml.safe_dump(config))
        label = "=".join(REAL_NODE_LABEL)
        comp = self._launch("kubelet", [
            str(self.bin_dir / "kubelet"), f"--config={d / 'kubelet-config.yaml'}",
            f"--kubeconfig={kubeconfig}", f"--root-dir={d / 'kubelet'}",
            f"--cert-dir={d / 'kubelet-pki'}", f"--hostname-override={cfg.name}",
            f"--node-ip={cfg.gateway}", f"--node-labels={label}", "--v=1",
        ])  # fmt: skip
        kubectl = [str(_kubectl()), f"--kubeconfig={admin_kc}", "get", "node", cfg.name]
        jsonpath = "-o=jsonpath={.status.conditions[?(@.type=='Ready')].status}"

        def ready() -> bool:
            out = subprocess.run([*kubectl, jsonpath], capture_output=True, text=True)
            return out.stdout.strip() == "True"

        comp.wait_ready(ready, timeout, what=f"node {cfg.name} Ready")

    def _start_kube_proxy(self, admin_kubeconfig: Path, timeout: float) -> None:
        metrics, healthz = free_ports(2)
        comp = self._launch("kube-proxy", [
            str(self.bin_dir / "kube-proxy"), f"--kubeconfig={admin_kubeconfig}",
            f"--hostname-override={self.config.name}", "--proxy-mode=iptables",
            f"--cluster-cidr={self.config.subnet}",
            # 0 = leave the host's conntrack sysctls as they are (the defaults rewrite them)
            "--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            f"--metrics-bind-address=127.0.0.1:{metrics}",
            f"--healthz-bind-address=127.0.0.1:{healthz}",
        ])  # fmt: skip

        def rules() -> bool:
            out = subprocess.run(
                ["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"],
                capture_output=True, text=True,
            )  # fmt: skip
            return "10.96.0.1/32" in out.stdout

        comp.wait_ready(rules, timeout, what="serving 10.96.0.1 (iptables rules)")

    def _kill_containers(self) -> None:
        tasks = self._ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            self._ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        deadline = time.monotonic() + 10
        for task in tasks:
            while self._ctr("tasks", "delete", task, check=False).returncode != 0:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)

    def _kill_shims(self) -> None:
        """containerd-shim-runc-v2 processes outlive containerd: SIGKILL the ones whose
        command line names this node's socket (started for this node, found by PID)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                cmdline
                and b"containerd-shim" in cmdline[0]
                and str(self.socket).encode() in cmdline
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), 9)


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def _archive_names(archive: Path) -> list[str]:
    """Image names in an OCI archive's index.json (``org.opencontainers.image.ref.name``
    holds the full name when buildah pushed it as ``oci-archive:PATH:NAME``)."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        index = json.load(member) if member else {}
    return [
        m.get("annotations", {}).get("io.containerd.image.name")
        or m.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
        for m in index.get("manifests", [])
    ]


def _kubectl() -> Path:
    from .client import find_kubectl

    return Path(find_kubectl())
