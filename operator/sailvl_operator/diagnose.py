"""Pure diagnosis: why pods failed, which Secrets a pod template needs, and whether an
API server error on a child create can ever succeed.

- :func:`pod_problems` turns the pods of a Job into one line per failed or stuck pod:
  pod, node, container, exit code and reason (``OOMKilled``, ``Error``), a pod-level
  reason (``Evicted``, ``DeadlineExceeded``) or a waiting reason that will not clear
  on its own (``ErrImagePull``, ``ImagePullBackOff``, ``CreateContainerConfigError``).
  The Job controller's own condition only says ``BackoffLimitExceeded``.
- :func:`secret_refs` lists every Secret a pod spec reads (env ``secretKeyRef``,
  ``envFrom.secretRef``, ``secret`` and ``projected`` volumes), skipping ``optional``
  ones, so a missing Secret is an InvalidSpec before the Job exists instead of pods
  stuck in ``CreateContainerConfigError``.
- :func:`classify` splits API server errors into permanent ones (the spec must
  change: 400, 403 by policy, 404, 422, ...) and transient ones (409 on a stale read,
  429, 5xx, 403 for an exceeded quota, which frees up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Waiting reasons that never clear without a change (image or pod config problems).
STUCK_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
TRANSIENT_CODES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class PodProblem:
    pod: str
    node: str
    reason: str
    """CamelCase: the container's terminated/waiting reason or the pod's reason."""
    text: str
    """One line naming pod, node, container, exit code and reason."""
    stuck: bool
    """A waiting container (the pod is not failed, yet will not start)."""


def _container_problem(pod: str, node: str, cs: dict[str, Any]) -> PodProblem | None:
    state = cs.get("state") or {}
    last = (cs.get("lastState") or {}).get("terminated")
    term = state.get("terminated") or last
    name = cs.get("name", "?")
    if term and int(term.get("exitCode") or 0) != 0:
        reason = term.get("reason") or "Error"
        text = f"pod {pod} on node {node}: container {name} exited with code "
        text += f"{term.get('exitCode')} ({reason})"
        if term.get("message"):
            text += f": {term['message'].strip()[:300]}"
        return PodProblem(pod, node, reason, text, stuck=False)
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in STUCK_WAITING:
        text = f"pod {pod} on node {node}: container {name} is waiting: {waiting['reason']}"
        if waiting.get("message"):
            text += f": {waiting['message'].strip()[:300]}"
        return PodProblem(pod, node, waiting["reason"], text, stuck=True)
    return None


def pod_problems(pods: list[dict[str, Any]]) -> list[PodProblem]:
    """One problem per failed or stuck pod, in pod-name order (see module docstring)."""
    out: list[PodProblem] = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        st = pod.get("status") or {}
        node = (pod.get("spec") or {}).get("nodeName") or "(unscheduled)"
        found = None
        statuses = [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]
        for cs in statuses:
            found = _container_problem(name, node, cs)
            if found:
                break
        if found is None and st.get("phase") == "Failed":
            reason = st.get("reason") or "Failed"  # Evicted, DeadlineExceeded, ...
            text = f"pod {name} on node {node}: {reason}"
            if st.get("message"):
                text += f": {st['message'].strip()[:300]}"
            found = PodProblem(name, node, reason, text, stuck=False)
        if found is not None:
            out.append(found)
    return out


def secret_refs(pod_spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(secret name, where it is referenced) for every non-optional Secret reference."""
    out: list[tuple[str, str]] = []
    for group in ("initContainers", "containers"):
        for ctr in pod_spec.get(group) or []:
            where = f"{group}[{ctr.get('name')}]"
            for env in ctr.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    out.append((ref["name"], f"{where}.env[{env.get('name')}].secretKeyRef"))
            for src in ctr.get("envFrom") or []:
                ref = src.get("secretRef")
                if ref and not ref.get("optional"):
                    out.append((ref["name"], f"{where}.envFrom.secretRef"))
    for vol in pod_spec.get("volumes") or []:
        sec = vol.get("secret")
        if sec and not sec.get("optional"):
            out.append((sec["secretName"], f"volumes[{vol.get('name')}].secret"))
        for src in (vol.get("projected") or {}).get("sources") or []:
            sec = src.get("secret")
            if sec and not sec.get("optional"):
                out.append((sec["name"], f"volumes[{vol.get('name')}].projected.secret"))
    # imagePullSecrets are left out: the kubelet only warns when one is missing and a
    # public image still pulls.
    return out


@dataclass(frozen=True)
class ApiError:
    permanent: bool
    code: int
    message: str
    """The API server's own message (from the Status body), or its HTTP reason."""


def classify(status: int, reason: str, body: str | bytes | None) -> ApiError:
    """Permanent or transient, with the server's message (see module docstring)."""
    message = reason or f"HTTP {status}"
    try:
        parsed = json.loads(body or "")
        if isinstance(parsed, dict) and parsed.get("message"):
            message = str(parsed["message"])
    except ValueError:
        pass
    transient = status in TRANSIENT_CODES or status >= 500
    if status == 403 and "exceeded quota" in message:
        transient = True
    return ApiError(not transient, status, message)
