"""The real Kueue controller against the test control plane (no Docker, no in-cluster pod).

``Kueue(cp).start()`` does what Kueue's own manifests do in a cluster, with loopback
in place of the Service:

1. installs Kueue's CRDs from the same Go module the controller was built from
   (``build-kueue.sh --print-crds``: ``config/components/crd/bases`` in the module cache),
   with server-side apply (the Workload CRD is larger than the client-side apply
   annotation allows);
2. registers Kueue's webhooks (``config/components/webhook/manifests.yaml``), keeping
   only those this configuration serves (``batch`` Jobs and Kueue's own kinds; the pod,
   Deployment, JobSet... webhooks would fail every create with 404) and pointing each at
   ``https://127.0.0.1:<port><path>`` with the control plane's CA as ``caBundle``. The
   webhook server presents the apiserver serving certificate of the harness (signed by
   that CA, valid for 127.0.0.1), so the API server verifies it like any webhook;
3. runs ``kueue --config`` with internal certificate management off, leader election off,
   ``manageJobsWithoutQueueName: false`` and the ``batch/job`` integration only, reading
   the harness's admin kubeconfig; the visibility API server (an aggregated API that
   would need an APIService and in-cluster routing) is switched off by feature gate.

Kueue v0.17 reads its metrics serving certificate from the fixed folder
``/etc/kueue/metrics/certs`` when internal certificate management is off
(``cmd/kueue/main.go``) and exits if it is missing. The harness writes the test CA's
serving pair there when the folder has none (it needs write access to /etc, which the
root CI user has) and removes what it made at ``stop()``; the metrics endpoint itself is
bound to a loopback port nobody reads.

``stop()`` stops the controller by PID; ``restart`` is not needed by the tests. CRDs and
webhook configurations stay installed: with the controller gone, the webhooks'
``failurePolicy: Fail`` would refuse Jobs with a queue label, which is what a cluster
without a running Kueue does too. :meth:`uninstall_webhooks` removes them.
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .harness import HERE, ControlPlane
from .process import Component, free_ports, http_ok

BUILD_SCRIPT = HERE / "build-kueue.sh"
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
#: API groups whose webhooks this configuration serves (batch/job integration + core).
SERVED_GROUPS = {"batch", "kueue.x-k8s.io"}


def kueue_bin() -> Path:
    """Where build-kueue.sh puts (or put) the controller binary."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-bin"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip()) / "kueue"


@functools.cache
def crd_dir() -> Path:
    """Kueue's CRD bases in the Go module cache (downloaded if needed; no build)."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-crds"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def loopback_webhooks(manifest: str, port: int, ca_pem: bytes) -> list[dict[str, Any]]:
    """Kueue's webhook configurations with only the webhooks for SERVED_GROUPS, each
    pointed at ``https://127.0.0.1:port<path>`` and trusting ``ca_pem``."""
    ca = base64.b64encode(ca_pem).decode()
    out = []
    for doc in yaml.safe_load_all(manifest):
        if not doc or doc.get("kind") not in (
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ):
            continue
        hooks = []
        for hook in doc.get("webhooks") or []:
            groups = {g for rule in hook.get("rules") or [] for g in rule.get("apiGroups") or []}
            if not groups or not groups <= SERVED_GROUPS:
                continue
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
            hooks.append(hook)
        doc["metadata"]["name"] = f"kueue-{doc['metadata']['name']}"
        doc["webhooks"] = hooks
        out.append(doc)
    return out


def configuration(webhook_port: int, metrics_port: int, health_port: int, cert_dir: Path) -> str:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2) for a loopback controller."""
    cfg = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": "kueue-system",
        "manageJobsWithoutQueueName": False,
        "internalCertManagement": {"enable": False},
        "leaderElection": {"leaderElect": False},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics_port}"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "integrations": {"frameworks": ["batch/job"]},
    }
    return yaml.safe_dump(cfg)


class Kueue:
    """One Kueue controller process serving the control plane ``cp``."""

    def __init__(self, cp: ControlPlane, binary: Path | None = None) -> None:
        self.cp = cp
        self.binary = binary or kueue_bin()
        self.dir = cp.workdir / "kueue"
        self.component: Component | None = None
        self.webhook_names: list[tuple[str, str]] = []
        self.made: list[Path] = []  # host paths start() created, removed by stop()

    def missing(self) -> bool:
        return not self.binary.is_file()

    def install(self) -> None:
        """CRDs and webhook configurations (idempotent)."""
        kubectl = self.cp.kubectl
        assert kubectl is not None
        crds = crd_dir()
        kubectl.apply(crds, server_side=True)
        names = [
            "crd/" + yaml.safe_load(p.read_text())["metadata"]["name"]
            for p in sorted(crds.glob("*.yaml"))
        ]
        kubectl.wait_established(*names)
        kubectl("create", "namespace", "kueue-system", check=False)

    def start(self) -> None:
        kubectl = self.cp.kubectl
        assert kubectl is not None
        self.install()
        pki = self.cp.workdir / "pki"
        certs = self.dir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(pki / "apiserver.crt", certs / "tls.crt")
        shutil.copy(pki / "apiserver.key", certs / "tls.key")
        if not (METRICS_CERTS / "tls.crt").is_file():
            # Remember what did not exist (outermost first); stop() removes it in reverse.
            for folder in (*reversed(METRICS_CERTS.parents), METRICS_CERTS):
                if not folder.exists():
                    self.made.append(folder)
            METRICS_CERTS.mkdir(parents=True, exist_ok=True)
            for name in ("tls.crt", "tls.key"):
                shutil.copy(pki / name.replace("tls", "apiserver"), METRICS_CERTS / name)
                self.made.append(METRICS_CERTS / name)
        webhook_port, metrics_port, health_port = free_ports(3)
        config = self.dir / "config.yaml"
        config.write_text(configuration(webhook_port, metrics_port, health_port, certs))
        manifest = (crd_dir().parents[1] / "webhook" / "manifests.yaml").read_text()
        hooks = loopback_webhooks(manifest, webhook_port, (pki / "ca.crt").read_bytes())
        self.component = Component(
            name="kueue",
            argv=[
                str(self.binary),
                f"--config={config}",
                f"--kubeconfig={self.cp.kubeconfig}",
                "--feature-gates=VisibilityOnDemand=false",
                "--zap-log-level=2",
            ],
            log_dir=self.cp.workdir / "logs",
        )
        self.component.start()
        self.component.wait_ready(
            lambda: http_ok(f"http://127.0.0.1:{health_port}/readyz"), 60, "ready (/readyz)"
        )
        # Register the webhooks only once their server answers, so a Job created in
        # between is not refused for want of a listener.
        kubectl.apply(*hooks)
        self.webhook_names = [(h["kind"], h["metadata"]["name"]) for h in hooks]

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()
            self.component = None
        for path in reversed(self.made):  # files first, then the folders start() made
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        self.made = []

    def uninstall_webhooks(self) -> None:
        kubectl = self.cp.kubectl
        assert kubectl is not None
        for kind, name in self.webhook_names:
            kubectl("delete", kind.lower(), name, "--ignore-not-found", check=False)
        self.webhook_names = []

    def log_tail(self, lines: int = 40) -> str:
        return self.component.log_tail(lines) if self.component else "(not running)"
