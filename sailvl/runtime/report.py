"""Progress reporting from a job to its resource's status.

The path, settled once for all jobs: a job pod merge-patches the ``status`` subresource
of the resource it runs for (``TrainStage``, ``CaptionJob`` or ``EvalSuite``), with the
ServiceAccount ``sailvl-job`` whose Role (created by the operator in each namespace it
serves) allows exactly ``patch`` on those ``*/status`` subresources. A job writes only
its progress fields (step, loss, tokens, scores, ...); the operator owns ``phase``,
``conditions`` and ``restarts``. A JSON merge patch touches only the keys it names, so
the two writers never clobber each other and no resourceVersion is needed.

The sink is chosen by ``SAILVL_STATUS_SINK``:
- ``kubernetes``: in-cluster API server (service-account token and CA from the pod);
- ``file:<path>``: a JSON file (the local executor reads it; written atomically);
- unset / ``none``: nothing is reported.

Reports are rate-limited (``min_interval`` seconds) unless ``final=True``; a failed
report is logged and dropped, never fatal: progress is advisory, the job goes on.

A fatal error (:func:`report_failure`) goes out on two channels before the job exits
non-zero, so that it never lives only in a log: ``message`` and ``error`` (the error
class) in the status, as above; and the same line as the container's termination
message (``/dev/termination-log``, or ``SAILVL_TERMINATION_LOG``), which the kubelet
copies into the pod's status. The operator names every failed pod with that message in
the resource's ``Failed`` condition and ``status.message`` (``sailvl_operator.diagnose``)
whatever the exit code, and it is the only channel of a kind whose pods may not patch
their resource (DataJob).
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PLURALS = {"TrainStage": "trainstages", "CaptionJob": "captionjobs", "EvalSuite": "evalsuites"}
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TERMINATION_LOG_ENV = "SAILVL_TERMINATION_LOG"
TERMINATION_LOG = Path("/dev/termination-log")  # the kubelet's default terminationMessagePath
MESSAGE_LIMIT = 1000  # characters; the kubelet keeps 4096 bytes of a termination message


class StatusReporter:
    """Merge-patches progress fields into a resource's status (see module docstring)."""

    def __init__(
        self,
        kind: str,
        name: str,
        namespace: str,
        sink: str | None = None,
        min_interval: float = 10.0,
    ) -> None:
        self.kind, self.name, self.namespace = kind, name, namespace
        self.sink = sink if sink is not None else os.environ.get("SAILVL_STATUS_SINK", "none")
        self.min_interval = min_interval
        self._last = 0.0
        self._pending: dict[str, Any] = {}

    def update(self, fields: dict[str, Any], final: bool = False) -> bool:
        """Queue ``fields``; send them if ``final`` or the interval has passed."""
        self._pending.update(fields)
        now = time.monotonic()
        if not final and now - self._last < self.min_interval:
            return False
        body, self._pending = self._pending, {}
        self._last = now
        try:
            self._send(body)
            return True
        except Exception as err:  # noqa: BLE001 - progress is advisory
            log.warning("status report to %s failed: %s", self.sink, err)
            return False

    def _send(self, body: dict[str, Any]) -> None:
        if self.sink in ("", "none"):
            return
        if self.sink.startswith("file:"):
            _merge_file(Path(self.sink[5:]), body)
        elif self.sink == "kubernetes":
            self._patch_kubernetes(body)
        else:
            raise ValueError(f"SAILVL_STATUS_SINK: unknown sink {self.sink!r}")

    def _patch_kubernetes(self, body: dict[str, Any]) -> None:
        host = os.environ.get("SAILVL_API_SERVER") or "https://{}:{}".format(
            os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        )
        token_file = Path(os.environ.get("SAILVL_API_TOKEN_FILE", SA_DIR / "token"))
        ca_file = os.environ.get("SAILVL_API_CA_FILE", str(SA_DIR / "ca.crt"))
        url = (
            f"{host}/apis/sailvl.io/v1alpha1/namespaces/{self.namespace}/"
            f"{PLURALS[self.kind]}/{self.name}/status"
        )
        req = urllib.request.Request(
            url,
            data=json.dumps({"status": body}).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/merge-patch+json",
                "Authorization": f"Bearer {token_file.read_text().strip()}",
            },
        )
        ctx = ssl.create_default_context(cafile=ca_file if Path(ca_file).exists() else None)
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            resp.read()


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe(what: str, exc: BaseException) -> tuple[str, str]:
    """(message, error) of a fatal exception: ``what`` names the object or file the job
    was working on; the error is the exception's class name."""
    error = type(exc).__name__
    return one_line(f"{what}: {error}: {exc}"), error


def report_failure(reporter: StatusReporter | None, message: str, error: str) -> None:
    """Report a fatal error before the job exits non-zero (see the module docstring):
    stderr, the termination message, and ``{message, error}`` in the status (``final``:
    not rate-limited). Never raises: the exit code still tells the Job it failed."""
    message = one_line(message)
    line = message if error in message else f"{error}: {message}"
    print(f"fatal: {line}", file=sys.stderr)
    path = os.environ.get(TERMINATION_LOG_ENV) or (
        str(TERMINATION_LOG) if TERMINATION_LOG.exists() else ""
    )
    if path:  # outside a pod there is no /dev/termination-log: nothing to write
        try:
            Path(path).write_text(line)
        except OSError as err:
            log.warning("termination message not written to %s: %s", path, err)
    if reporter is not None:
        reporter.update({"message": message, "error": error}, final=True)


def _merge_file(path: Path, body: dict[str, Any]) -> None:
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    current.update(body)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-")
    with os.fdopen(fd, "w") as fh:
        json.dump(current, fh)
    os.replace(tmp, path)


def read_file_status(path: Path) -> dict[str, Any]:
    """What a ``file:`` sink holds (the local executor's view of a job's status)."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def reporter_for(job_config: dict[str, Any], min_interval: float = 10.0) -> StatusReporter:
    meta = job_config.get("metadata", {})
    return StatusReporter(
        job_config["kind"],
        meta["name"],
        meta.get("namespace", "default"),
        min_interval=min_interval,
    )
