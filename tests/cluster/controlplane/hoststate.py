"""Host changes a real worker node makes, recorded at start and undone at stop.

A kubelet, kube-proxy, containerd and the CNI plugins change the machine they run on,
and do not undo it when they exit. :class:`HostState` takes a snapshot before the node
starts and, at :meth:`HostState.restore`, puts back what differs:

- sysctls: kubelet sets ``vm.overcommit_memory``, ``kernel.panic`` and friends
  (setupKernelTunables), the bridge plugin ``net.ipv4.ip_forward``, kube-proxy
  ``route_localnet``; each is written back to its value before the start;
- iptables / ip6tables chains: every chain that did not exist before (KUBE-*, the CNI
  plugin's CNI-* masquerade chains) is unhooked from the built-in chains, flushed and
  deleted; chains that existed before are left alone;
- mounts under the node's folder (kubelet's tmpfs volumes, container root file systems,
  network namespaces), unmounted deepest first;
- folders outside the node's folder that kubelet and containerd hard-code
  (``/var/lib/kubelet``, ``/var/log/containers``, ``/run/containerd``, ...) when they did
  not exist before, and the kubepods cgroups kubelet made under every controller;
- the pod bridge (deleting it also removes any veth still attached).

Everything is best effort and idempotent: restore() is called from error paths too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
)
TABLES = ("filter", "nat", "mangle", "raw")
BUILTIN = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
#: Paths kubelet / containerd / CNI create outside their configured folders.
HARDCODED = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/var/lib/cni",
    "/etc/cni",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def read_sysctl(key: str) -> str | None:
    path = Path("/proc/sys") / key.replace(".", "/")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def chains(tool: str, table: str) -> set[str]:
    """User-defined chains of one table (``-N NAME`` lines of ``-S``)."""
    out = _run(tool, "-w", "-t", table, "-S").stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("-N ")}


@dataclass
class HostState:
    """What the machine looked like before a node started (see the module docstring)."""

    node_dir: Path
    bridge: str
    sysctls: dict[str, str] = field(default_factory=dict)
    chains: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)
    bridge_existed: bool = False

    @classmethod
    def snapshot(cls, node_dir: Path, bridge: str) -> HostState:
        state = cls(node_dir=node_dir, bridge=bridge)
        for key in SYSCTLS:
            value = read_sysctl(key)
            if value is not None:
                state.sysctls[key] = value
        for tool in ("iptables", "ip6tables"):
            for table in TABLES:
                state.chains[(tool, table)] = chains(tool, table)
        state.existing = {p for p in HARDCODED if os.path.lexists(p)}
        state.bridge_existed = _run("ip", "link", "show", bridge).returncode == 0
        return state

    def restore(self) -> list[str]:
        """Undo every change; returns what was undone (for the log)."""
        done = self._iptables()
        done += self._mounts()
        done += self._cgroups()
        for path in HARDCODED:
            if path not in self.existing and os.path.lexists(path):
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"rm {path}")
        if not self.bridge_existed and _run("ip", "link", "del", self.bridge).returncode == 0:
            done.append(f"ip link del {self.bridge}")
        for key, value in self.sysctls.items():
            if read_sysctl(key) != value:
                _run("sysctl", "-qw", f"{key}={value}")
                done.append(f"sysctl {key}={value}")
        return done

    def _iptables(self) -> list[str]:
        done = []
        for (tool, table), before in self.chains.items():
            new = chains(tool, table) - before
            if not new:
                continue
            # Unhook first: a chain still referenced by a rule cannot be deleted.
            for line in _run(tool, "-w", "-t", table, "-S").stdout.splitlines():
                parts = shlex.split(line)  # the CNI plugin's comments are quoted
                if parts[:1] == ["-A"] and "-j" in parts:
                    target = parts[parts.index("-j") + 1]
                    if target in new and parts[1] not in new:
                        _run(tool, "-w", "-t", table, "-D", *parts[1:])
            for chain in new:
                _run(tool, "-w", "-t", table, "-F", chain)
            for chain in new:
                _run(tool, "-w", "-t", table, "-X", chain)
            done.append(f"{tool} -t {table}: removed {len(new)} chains")
        return done

    def _mounts(self) -> list[str]:
        prefix = str(self.node_dir) + "/"
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)
        ]
        for mount in sorted(set(mounts), key=len, reverse=True):
            _run("umount", "-l", mount)
        return [f"umount {len(set(mounts))} mounts"] if mounts else []

    def _cgroups(self) -> list[str]:
        removed = 0
        for top in CGROUP_ROOT.glob("*/kubepods*"):
            # Depth first: a cgroup folder can be removed only when it has no children.
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
                try:
                    os.rmdir(dirpath)
                    removed += 1
                except OSError:
                    pass
        return [f"rmdir {removed} kubepods cgroups"] if removed else []
