"""Dynamic shard assignment: pods claim input shards with conditional creates.

Why claims and not one Job index per shard. The paper's recaption run is ~30,000 shards
of 10,000 images on ~256 accelerators. An Indexed Job with one index per shard would
assign work dynamically too, but every shard would start a new pod and load the
captioner again (InternVL2-8B under LMDeploy: a minute or more, against ~20 min of work
per shard), create 30,000 pods for the scheduler and the API server, and could still not
start a second copy of a straggling shard: an index has one pod at a time. Claims keep
one long-lived pod per accelerator (the Indexed Job has `parallelism` indexes, one per
pod) and move only small objects: a claim costs one conditional PUT (8 ms measured on
SeaweedFS). The figures behind this choice are in the README ("Captioning at scale").

Objects, under the output prefix (`<g>` is a 3-digit generation):

- `_claims/<input key>.<g>`: claim generation g of a shard: JSON {owner, index, run,
  token, time}. Created with `create_once`, so of the pods racing for a generation
  exactly one holds it. Generation 0 is the first claim; g + 1 is a takeover.
- `_standby/<input key>.<g>`: the one idle pod that waits to take over generation
  g - 1 when it expires (so at most one pod per in-flight shard lingers at the tail).
- the output shard and `_index/<output key>.json` (`sailvl.caption.shards`): the shard's
  commit. The output is created with `create_once` too: the first commit wins, a later
  one (the straggler finishing after its takeover) is dropped, so every sample is
  written exactly once whoever finishes first.

`Claimer.next()` hands out the next shard for this pod:

1. Walk: the shards in an order rotated per pod (pod k of n starts at k * N / n, so pods
   start on disjoint ranges and rarely race), skipping shards committed or claimed at
   start (one listing each of `_index/` and `_claims/`), trying generation 0 of the rest.
2. Tail: when the walk is done, list again and look at every uncommitted shard's newest
   claim. A claim from this pod's own Job index but an earlier run (the pod was
   restarted after a crash) is taken over at once; a claim older than `timeout_s` with
   fewer than `max_takeovers` takeovers is taken over (generation g + 1). Otherwise this
   pod takes the standby of each in-flight shard whose standby is free and waits,
   polling only those shards (their output and next claim), until each is committed or
   expires; then one more full pass. A pod with no standby to hold ends. Full listings
   thus happen a few times per pod, not per poll (at 30,000 shards a listing is 30
   LIST pages on S3).

Claim age comes from the claimant's clock (`time` in the claim): clocks across pods must
agree to well under `timeout_s` (NTP gives milliseconds). A pod whose index fails for
good leaves claims that expire and are taken over by a standby, if one is waiting.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sailvl.storage import NotFoundError, create_once

log = logging.getLogger("sailvl.caption")
CLAIMS = "_claims/"
STANDBY = "_standby/"


@dataclass(frozen=True)
class Claim:
    """A claim this pod holds: shard `key` at generation `gen`."""

    key: str
    gen: int
    takeover: bool = False


@dataclass
class Claimer:
    """One pod's view of the claim protocol (see the module docstring)."""

    store: Any  # the output store
    keys: list[str]  # every input shard key, manifest order
    committed: Callable[[], set[str]]  # input keys whose output is committed (a listing)
    done: Callable[[str], bool] | None = None  # one input key's commit state (cheap check)
    index: int = 0  # this pod's Job completion index
    count: int = 1  # pods in the Job
    timeout_s: float = 7200.0  # a claim older than this may be taken over
    max_takeovers: int = 1  # takeovers per shard (claim generations - 1)
    poll_s: float = 5.0  # how often a standby pod looks again
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    stats: dict[str, int] = field(default_factory=dict)  # claimed, taken_over, waits

    def __post_init__(self) -> None:
        n = len(self.keys)
        start = (self.index * n) // max(self.count, 1) if n else 0
        self._walk = self.keys[start:] + self.keys[:start]
        self._pos = 0
        self._seen: set[str] | None = None  # committed or claimed when the walk began
        self._standby: set[tuple[str, int]] = set()
        for name in ("claimed", "taken_over", "waits"):
            self.stats.setdefault(name, 0)

    # -- objects ----------------------------------------------------------------------
    def _body(self) -> bytes:
        return json.dumps(
            {
                "owner": os.environ.get("HOSTNAME", "") or f"index-{self.index}",
                "index": self.index,
                "run": self.run,
                "token": uuid.uuid4().hex,
                "time": self.clock(),
            },
            sort_keys=True,
        ).encode()

    @staticmethod
    def _name(prefix: str, key: str, gen: int) -> str:
        return f"{prefix}{key}.{gen:03d}"

    def _try(self, prefix: str, key: str, gen: int) -> bool:
        return create_once(self.store, self._name(prefix, key, gen), self._body())

    def claims(self) -> dict[str, int]:
        """Newest claim generation of every claimed shard (one listing of `_claims/`)."""
        out: dict[str, int] = {}
        for obj in self.store.list(CLAIMS):
            key, _, gen = obj[len(CLAIMS) :].rpartition(".")
            if key and gen.isdigit():
                out[key] = max(out.get(key, -1), int(gen))
        return out

    def claim_body(self, key: str, gen: int) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.store.read_bytes(self._name(CLAIMS, key, gen))))
        except (NotFoundError, ValueError):
            return None

    # -- the protocol -----------------------------------------------------------------
    def next(self) -> Claim | None:
        """The next shard this pod should caption, or None when it should end."""
        if self._seen is None:
            self._seen = self.committed() | set(self.claims())
        while self._pos < len(self._walk):
            key = self._walk[self._pos]
            self._pos += 1
            if key in self._seen:
                continue
            if self._try(CLAIMS, key, 0):
                self.stats["claimed"] += 1
                return Claim(key, 0)
        return self._tail()

    def _tail(self) -> Claim | None:
        while True:
            # A full pass: one listing of the commits and one of the claims.
            done, newest = self.committed(), self.claims()
            watch: list[tuple[str, int, float]] = []  # (key, claim gen, claim time)
            for key in self.keys:
                if key in done:
                    continue
                gen = newest.get(key, -1)
                if gen < 0:  # never claimed (its claimer's walk skipped it): claim it now
                    if self._try(CLAIMS, key, 0):
                        self.stats["claimed"] += 1
                        return Claim(key, 0)
                    continue
                body = self.claim_body(key, gen) or {}
                if body.get("run") == self.run:  # ours, in flight or given up: never waited on
                    continue
                mine_before = body.get("index") == self.index
                since = float(body.get("time", 0.0))
                age = self.clock() - since
                can_take = gen < self.max_takeovers
                if mine_before or (can_take and age >= self.timeout_s):
                    if claim := self._take_over(key, gen, age):
                        return claim
                    continue
                if can_take and (
                    (key, gen + 1) in self._standby or self._try(STANDBY, key, gen + 1)
                ):
                    self._standby.add((key, gen + 1))
                    watch.append((key, gen, since))
            if not watch:
                return None
            # Wait on the watched shards only (a few reads each), until each is committed,
            # taken over by someone else, or expired and taken over by this pod.
            while watch:
                earliest = min(self.timeout_s - (self.clock() - t) for _, _, t in watch)
                self.stats["waits"] += 1
                self.sleep(max(0.01, min(self.poll_s, earliest)))
                still = []
                for key, gen, since in watch:
                    if self.is_committed(key) or self.store.exists(
                        self._name(CLAIMS, key, gen + 1)
                    ):
                        continue
                    age = self.clock() - since
                    if age >= self.timeout_s:
                        if claim := self._take_over(key, gen, age):
                            return claim
                        continue
                    still.append((key, gen, since))
                watch = still

    def _take_over(self, key: str, gen: int, age: float) -> Claim | None:
        if not self._try(CLAIMS, key, gen + 1):
            return None
        self.stats["taken_over"] += 1
        log.info("shard %s: took over claim %d (age %.0f s)", key, gen, age)
        return Claim(key, gen + 1, takeover=True)

    def is_committed(self, key: str) -> bool:
        """One shard's commit state (the `done` callable, else a fresh listing)."""
        if self.done is not None:
            return self.done(key)
        return key in self.committed()
