"""KWOK fake nodes for the test control plane.

A Node object created with a status keeps that status on create, so capacity and
allocatable (including extended resources such as ``nvidia.com/gpu`` and
``huawei.com/Ascend910``) come straight from these manifests; kwok's node-initialize
stage then only adds conditions, addresses and nodeInfo. kwok manages only nodes that
carry the annotation :data:`KWOK_ANNOTATION` (it runs with
``--manage-nodes-with-annotation-selector``), and keeps their Leases renewed.

The nodes carry no taint unless ``taint`` is set: in a cluster of only fake nodes pods
need no toleration. With a real node next to them (``realnode.py``) they carry
:data:`KWOK_TAINT`, so only pods that tolerate it (the tests' KWOK pods) land on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
#: Extended resource names as the device plugins advertise them.
NVIDIA_GPU = "nvidia.com/gpu"
ASCEND_910 = "huawei.com/Ascend910"
#: The taint of the fake nodes in a cluster with a real node.
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}


@dataclass(frozen=True, kw_only=True)
class NodeSet:
    """How many fake nodes of each kind, and what each one offers."""

    gpu_nodes: int = 2  # nodes with NVIDIA_GPU: devices_per_node
    ascend_nodes: int = 2  # nodes with ASCEND_910: devices_per_node, Ascend labels
    cpu_nodes: int = 2  # plain nodes, no accelerator
    devices_per_node: int = 8  # accelerator devices on each GPU / Ascend node
    cpu: str = "64"  # CPU capacity of every node
    memory: str = "512Gi"  # memory capacity of every node
    pods: str = "110"  # pod capacity of every node
    taint: bool = False  # taint every node with KWOK_TAINT (a cluster with a real node)

    def __post_init__(self) -> None:
        for field in ("gpu_nodes", "ascend_nodes", "cpu_nodes"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)}")
        if self.gpu_nodes + self.ascend_nodes + self.cpu_nodes == 0:
            raise ValueError("gpu_nodes + ascend_nodes + cpu_nodes must be > 0")
        if self.devices_per_node < 1:
            raise ValueError(f"devices_per_node must be >= 1, got {self.devices_per_node}")

    def names(self) -> list[str]:
        """Node names, in the order manifests() returns them."""
        return [n["metadata"]["name"] for n in self.manifests()]

    def manifests(self) -> list[dict[str, Any]]:
        """The Node objects: kwok-gpu-<i>, kwok-ascend-<i>, kwok-cpu-<i>."""
        nodes = []
        for i in range(self.gpu_nodes):
            nodes.append(
                self._node(
                    f"kwok-gpu-{i}",
                    {"accelerator": "nvidia", "nvidia.com/gpu.present": "true"},
                    {NVIDIA_GPU: str(self.devices_per_node)},
                )
            )
        for i in range(self.ascend_nodes):
            # Labels as the Ascend device plugin / MindCluster node labelling set them.
            nodes.append(
                self._node(
                    f"kwok-ascend-{i}",
                    {
                        "accelerator": "huawei-Ascend910",
                        "accelerator-type": "module-910b-8",
                        "node.kubernetes.io/npu.chip.name": "910B",
                    },
                    {ASCEND_910: str(self.devices_per_node)},
                )
            )
        for i in range(self.cpu_nodes):
            nodes.append(self._node(f"kwok-cpu-{i}", {}, {}))
        return nodes

    def _node(self, name: str, labels: dict[str, str], extra: dict[str, str]) -> dict[str, Any]:
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods, **extra}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {
                    KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1],
                    "node.alpha.kubernetes.io/ttl": "0",
                },
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/role": "agent",
                    "node-role.kubernetes.io/agent": "",
                    "type": "kwok",
                    **labels,
                },
            },
            "spec": {"taints": [dict(KWOK_TAINT)]} if self.taint else {},
            "status": {"allocatable": dict(resources), "capacity": dict(resources)},
        }
