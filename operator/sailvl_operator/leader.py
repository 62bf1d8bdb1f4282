"""Leader election for several operator replicas: a coordination.k8s.io Lease, the way
client-go's leaderelection package does it.

kopf has no leader election of its own (its peering pauses every replica that sees
another one of the same priority; it is meant for a developer's operator to silence the
deployed one). So with ``SAILVL_LEADER_ELECTION=1`` a startup handler waits until this
process holds the Lease ``SAILVL_LEADER_ELECTION_LEASE`` in ``SAILVL_OPERATOR_NAMESPACE``;
kopf starts no watch and runs no handler before every startup handler has returned,
so a standby replica does nothing but retry the Lease.

- **Acquire.** The Lease is taken when it is free, when its holder is this process, or
  when its holder did not renew it for ``leaseDurationSeconds``. Writes carry the
  Lease's resourceVersion, so of two standbys racing for an expired Lease one write
  wins and the other gets 409 and retries.
- **Renew.** A daemon thread renews every ``SAILVL_LEADER_RENEW_SECONDS``. A leader
  that cannot renew within the lease duration exits (status 1): another replica may
  already be leading, and a restarted pod comes back as a standby. The same happens,
  immediately, when the Lease names another holder.
- **Hand-over.** On SIGTERM nothing is released: the next leader waits for the lease
  duration (15 s by default). A leader killed without warning is replaced the same way.
- **Liveness while standing by.** kopf serves ``--liveness`` only once startup is over,
  so a standby answers ``GET /healthz`` on ``SAILVL_STANDBY_HEALTH_PORT`` itself and
  frees the port just before kopf takes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.rest import ApiException

from . import k8s

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Election:
    namespace: str
    name: str
    identity: str
    duration_s: int = 15
    renew_s: float = 5.0
    retry_s: float = 2.0
    health_port: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Election | None:
        if env.get("SAILVL_LEADER_ELECTION", "0") != "1":
            return None
        ident = env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        return cls(
            namespace=env.get("SAILVL_OPERATOR_NAMESPACE") or "default",
            name=env.get("SAILVL_LEADER_ELECTION_LEASE") or "sailvl-operator",
            identity=ident,
            duration_s=int(env.get("SAILVL_LEADER_LEASE_SECONDS", "15")),
            renew_s=float(env.get("SAILVL_LEADER_RENEW_SECONDS", "5")),
            retry_s=float(env.get("SAILVL_LEADER_RETRY_SECONDS", "2")),
            health_port=int(env.get("SAILVL_STANDBY_HEALTH_PORT", "0")),
        )


def _time(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # metav1.MicroTime


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def claim(spec: Mapping[str, Any] | None, e: Election, now: dt.datetime) -> dict[str, Any] | None:
    """The Lease spec to write if this process may hold the Lease now, else None.
    Pure: ``spec`` is the Lease's current spec (None: no Lease yet)."""
    spec = dict(spec or {})
    holder = spec.get("holderIdentity")
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or e.duration_s)
    expired = renewed is None or now - renewed > dt.timedelta(seconds=duration)
    if holder and holder != e.identity and not expired:
        return None
    out = {**spec, "holderIdentity": e.identity, "leaseDurationSeconds": e.duration_s}
    out["renewTime"] = _time(now)
    if holder != e.identity:
        out["acquireTime"] = _time(now)
        out["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    return out


def try_acquire(e: Election) -> bool:
    """One attempt to take or renew the Lease; False when another process holds it."""
    now = dt.datetime.now(dt.UTC)
    lease = k8s.read_lease(e.namespace, e.name)
    spec = claim((lease or {}).get("spec"), e, now)
    if spec is None:
        return False
    version = (lease or {}).get("metadata", {}).get("resourceVersion")
    try:
        k8s.write_lease(e.namespace, e.name, spec, version)
    except ApiException as err:
        if err.status in (404, 409):  # someone else wrote first (or deleted it): retry
            return False
        raise
    return True


class _Standby(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"standby: waiting for the leader Lease\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass  # probes every few seconds would flood the log


def _renew_forever(e: Election, stop: threading.Event) -> None:
    last = time.monotonic()
    while not stop.wait(e.renew_s):
        try:
            if try_acquire(e):
                last = time.monotonic()
            else:
                log.error(
                    "leader Lease %s/%s taken over by another replica: exiting", e.namespace, e.name
                )
                os._exit(1)
        except Exception as err:  # an API server outage: keep trying until the deadline
            log.warning("renewing the leader Lease failed: %s", err)
        if time.monotonic() - last > e.duration_s:
            log.error("leader Lease not renewed for %d s: exiting", e.duration_s)
            os._exit(1)


async def become_leader(e: Election) -> threading.Event:
    """Wait (cancellably: SIGTERM ends a standby at once) until this process holds the
    Lease; then keep renewing it in a thread. Returns the event that stops the renewal."""
    server = None
    if e.health_port:
        server = http.server.ThreadingHTTPServer(("0.0.0.0", e.health_port), _Standby)
        threading.Thread(target=server.serve_forever, daemon=True, name="standby-health").start()
    announced = False
    try:
        while True:
            try:
                if await asyncio.to_thread(try_acquire, e):
                    break
            except Exception as err:  # API server unreachable: keep trying
                log.warning("leader election: %s", err)
            if not announced:
                log.info("standing by: Lease %s/%s is held by another replica", e.namespace, e.name)
                announced = True
            await asyncio.sleep(e.retry_s)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    log.info("leading: holding Lease %s/%s as %s", e.namespace, e.name, e.identity)
    stop = threading.Event()
    threading.Thread(target=_renew_forever, args=(e, stop), daemon=True, name="lease").start()
    return stop


async def wait_for_leadership(**_: Any) -> None:
    """kopf startup handler (registered in main.py): with leader election on, nothing
    else starts before this replica leads."""
    election = Election.from_env(os.environ)
    if election is not None:
        await become_leader(election)
