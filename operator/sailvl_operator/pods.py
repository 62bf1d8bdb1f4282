"""Pieces every job pod gets: security contexts, /dev/shm and credentials from Secrets.

- **Pod Security.** Namespaces labelled ``pod-security.kubernetes.io/enforce=restricted``
  reject a pod unless it runs as non-root, forbids privilege escalation, drops every
  capability and uses the RuntimeDefault (or a Localhost) seccomp profile. Job pods get
  exactly that by default, as uid/gid 1000 (the images' ``USER``), and a spec's
  ``template.securityContext`` / ``template.containerSecurityContext`` is merged over it
  key by key (e.g. ``supplementalGroups`` for the group owning ``/dev/davinci*`` on
  Ascend hosts, or ``runAsUser`` for another image).
- **/dev/shm.** The container runtime gives a pod 64 MiB of ``/dev/shm``; NCCL/HCCL
  and DataLoader workers need far more. A ``medium: Memory`` emptyDir is mounted there
  (it counts against the pod's memory limit; ``template.shmSize`` caps it).
- **Secrets.** The storage Secret's named keys become the AWS variables boto3 reads,
  one ``secretKeyRef`` each (the two credentials required, the rest optional), and the
  judge's key becomes ``SAILVL_JUDGE_API_KEY``. Values never pass through the operator:
  the kubelet resolves them when it starts the container.
"""

from __future__ import annotations

from typing import Any

from sailvl.api import constants as c
from sailvl.api.common import PodOverlay, SecretRef, StorageSecretRef

JOB_UID = 1000  # USER in images/*.Dockerfile (trainer, captioner, evaluator)
SHM_VOLUME = "dshm"
SHM_MOUNT: dict[str, Any] = {"name": SHM_VOLUME, "mountPath": "/dev/shm"}


def pod_security_context(overlay: PodOverlay, groups: tuple[int, ...] = ()) -> dict[str, Any]:
    """Restricted-compatible pod defaults, then the operator's Ascend groups, then the
    spec's own ``template.securityContext`` (its keys win)."""
    out: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": JOB_UID,
        "runAsGroup": JOB_UID,
        "fsGroup": JOB_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if groups:
        out["supplementalGroups"] = list(groups)
    out.update(overlay.security_context or {})
    return out


def container_security_context(overlay: PodOverlay) -> dict[str, Any]:
    out: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    out.update(overlay.container_security_context or {})
    return out


def shm_volume(overlay: PodOverlay) -> dict[str, Any]:
    empty: dict[str, Any] = {"medium": "Memory"}
    if overlay.shm_size:
        empty["sizeLimit"] = overlay.shm_size
    return {"name": SHM_VOLUME, "emptyDir": empty}


def _ref(name: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "key": key}
    if optional:
        ref["optional"] = True
    return {"secretKeyRef": ref}


def storage_env(secret: StorageSecretRef | None) -> list[dict[str, Any]]:
    """AWS_* variables from the storage Secret's named keys (``storageSecret.keys``)."""
    if secret is None:
        return []
    k = secret.keys
    pairs = [
        ("AWS_ACCESS_KEY_ID", k.access_key_id, False),
        ("AWS_SECRET_ACCESS_KEY", k.secret_access_key, False),
        ("AWS_SESSION_TOKEN", k.session_token, True),
        ("AWS_ENDPOINT_URL", k.endpoint, True),
        ("AWS_DEFAULT_REGION", k.region, True),
    ]
    return [{"name": var, "valueFrom": _ref(secret.name, key, opt)} for var, key, opt in pairs]


def judge_env(secret: SecretRef | None) -> list[dict[str, Any]]:
    """The judge's API key (``judge.apiKeySecret``; key ``apiKey`` unless named)."""
    if secret is None:
        return []
    key = secret.key or c.DEFAULT_JUDGE_SECRET_KEY
    return [{"name": c.ENV_JUDGE_API_KEY, "valueFrom": _ref(secret.name, key)}]
