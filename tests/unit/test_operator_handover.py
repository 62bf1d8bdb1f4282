"""The hand-over reads a Curriculum's children and their Jobs from kopf's in-memory
indices (sailvl_operator.watchstate), not from list calls, and never trusts an indexed
child's scores older than the Job's end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sailvl.api import constants as c
from sailvl_operator import curriculum, k8s, watchstate


class Calls:
    """Stands in for the API server (sailvl_operator.k8s): records every call."""

    def __init__(
        self, fresh: dict[str, dict[str, Any]], jobs: dict[str, list[dict[str, Any]]] | None = None
    ) -> None:
        self.fresh, self.jobs = fresh, jobs or {}
        self.log: list[tuple[str, str, str]] = []

    def get(self, api_version: str, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        self.log.append(("get", kind, name))
        return self.fresh.get(name)

    def list_custom(self, kind: str, ns: str, selector: str) -> list[dict[str, Any]]:
        self.log.append(("list", kind, selector))
        return []

    def list_jobs(self, ns: str, selector: str) -> list[dict[str, Any]]:
        self.log.append(("list", "Job", selector))
        return self.jobs.get(selector.split("=", 1)[1], [])


def _child(kind: str, name: str, step: str, status: dict[str, Any]) -> dict[str, Any]:
    labels = {c.LABEL_CURRICULUM: "cur", c.LABEL_STEP: step}
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels}
    return {"kind": kind, "metadata": meta, "spec": {}, "status": status}


def _job(owner: dict[str, Any], kind: str, complete: bool) -> dict[str, Any]:
    conds = [{"type": "Complete", "status": "True", "lastTransitionTime": "T1"}]
    labels = {c.LABEL_KIND: kind, c.LABEL_NAME: owner["metadata"]["name"]}
    refs = [{"uid": owner["metadata"]["uid"]}]
    meta = {"name": f"{owner['metadata']['name']}-job", "labels": labels, "ownerReferences": refs}
    st = {"startTime": "T0", **({"conditions": conds} if complete else {"active": 1})}
    return {"metadata": meta, "status": st}


@pytest.fixture
def indices() -> Iterator[dict[str, dict[Any, list[Any]]]]:
    """kopf indices as plain mappings of key -> list of values (what Index/Store read as)."""
    found: dict[str, dict[Any, list[Any]]] = {watchstate.JOB_INDEX: {}}
    for kind in curriculum.CHILD_KINDS:
        found[watchstate.CHILD_INDEX_PREFIX + kind.lower()] = {}
    watchstate.bind(found)
    yield found
    watchstate.unbind()


def _put(found: dict[str, dict[Any, list[Any]]], kind: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    entries = watchstate.index_child(kind)(
        namespace=meta["namespace"], name=meta["name"], labels=meta["labels"], body=obj
    )
    for key, value in entries.items():
        found[watchstate.CHILD_INDEX_PREFIX + kind.lower()].setdefault(key, []).append(value)


def test_children_come_from_the_indices_without_list_calls(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = _child("CaptionJob", "cur-caption", "caption", {"phase": c.SUCCEEDED})
    s0 = _child("TrainStage", "cur-s0", "s0", {"phase": c.RUNNING})
    _put(indices, "CaptionJob", cap)
    _put(indices, "TrainStage", s0)
    for obj, kind, done in ((cap, "CaptionJob", True), (s0, "TrainStage", False)):
        job = _job(obj, kind, done)
        key = next(iter(watchstate.index_job("ns", job["metadata"]["labels"], job)))
        indices[watchstate.JOB_INDEX][key] = [job]
    api = Calls({})
    for fn in ("get", "list_custom", "list_jobs"):
        monkeypatch.setattr(k8s, fn, getattr(api, fn))
    states = curriculum.children_of("ns", "cur")
    assert {k: v.phase for k, v in states.items()} == {"caption": c.SUCCEEDED, "s0": c.RUNNING}
    assert api.log == []  # no list, no get: everything was in the indices


def test_an_indexed_child_older_than_its_jobs_end_is_read_again(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The eval's Job is Complete, but the index still holds the EvalSuite before its
    scores (and the observe's Succeeded) arrived: the gate must see the fresh scores."""
    stale = _child("EvalSuite", "cur-s0-eval", "s0-eval", {"phase": c.RUNNING})
    fresh = _child("EvalSuite", "cur-s0-eval", "s0-eval", {"phase": c.SUCCEEDED})
    fresh["status"]["scores"] = {"synth-ocr": 71.5}
    _put(indices, "EvalSuite", stale)
    job = _job(stale, "EvalSuite", True)
    indices[watchstate.JOB_INDEX][("ns", "cur-s0-eval")] = [job]
    api = Calls({"cur-s0-eval": fresh}, {"cur-s0-eval": [job]})
    for fn in ("get", "list_custom", "list_jobs"):
        monkeypatch.setattr(k8s, fn, getattr(api, fn))
    states = curriculum.children_of("ns", "cur")
    assert states["s0-eval"].phase == c.SUCCEEDED
    assert states["s0-eval"].scores == {"synth-ocr": 71.5}
    sel = f"{c.LABEL_NAME}=cur-s0-eval"
    assert api.log == [("get", "EvalSuite", "cur-s0-eval"), ("list", "Job", sel)]


def test_a_job_index_behind_the_childs_observe_is_read_again(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's observe listed the Job Complete and wrote Succeeded; the Job index
    still holds the running Job: the hand-over reads the Jobs instead of waiting."""
    done = _child("CaptionJob", "cur-caption", "caption", {"phase": c.SUCCEEDED})
    _put(indices, "CaptionJob", done)
    indices[watchstate.JOB_INDEX][("ns", "cur-caption")] = [_job(done, "CaptionJob", False)]
    api = Calls({"cur-caption": done}, {"cur-caption": [_job(done, "CaptionJob", True)]})
    for fn in ("get", "list_custom", "list_jobs"):
        monkeypatch.setattr(k8s, fn, getattr(api, fn))
    assert curriculum.children_of("ns", "cur")["caption"].phase == c.SUCCEEDED


def test_a_forged_status_still_gets_its_phase_from_the_jobs(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = _child("TrainStage", "cur-s0", "s0", {"phase": c.SUCCEEDED})
    _put(indices, "TrainStage", forged)
    running = _job(forged, "TrainStage", False)
    indices[watchstate.JOB_INDEX][("ns", "cur-s0")] = [running]
    api = Calls({"cur-s0": forged}, {"cur-s0": [running]})
    for fn in ("get", "list_custom", "list_jobs"):
        monkeypatch.setattr(k8s, fn, getattr(api, fn))
    assert curriculum.children_of("ns", "cur")["s0"].phase == c.RUNNING


def test_without_indices_the_children_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    watchstate.unbind()
    api = Calls({})
    for fn in ("get", "list_custom", "list_jobs"):
        monkeypatch.setattr(k8s, fn, getattr(api, fn))
    assert curriculum.children_of("ns", "cur") == {}
    assert [x[:2] for x in api.log] == [("list", k) for k in curriculum.CHILD_KINDS]


def test_advance_triggers_coalesce_while_one_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """One run holds the lock, one waits; later triggers join the waiting run (their
    fresh children with it) instead of each queueing a run."""
    runs: list[frozenset[str]] = []
    release = threading.Event()

    def slow(ns: str, name: str, fresh: frozenset[str]) -> None:
        runs.append(fresh)
        if len(runs) == 1:
            release.wait(10)

    monkeypatch.setattr(curriculum, "_advance", slow)
    first = threading.Thread(target=curriculum.advance, args=("ns", "co", "a"))
    first.start()
    while not runs:
        time.sleep(0.01)
    second = threading.Thread(target=curriculum.advance, args=("ns", "co", "b"))
    second.start()
    while ("ns", "co") not in curriculum._WAITING:
        time.sleep(0.01)
    curriculum.advance("ns", "co", "c")  # joins the waiting run: returns at once
    curriculum.advance("ns", "co")
    release.set()
    first.join(10)
    second.join(10)
    assert runs == [frozenset({"a"}), frozenset({"b", "c"})]
    assert ("ns", "co") not in curriculum._WAITING


def test_what_an_advance_creates_or_writes_is_decided_on_fresh_reads(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indices may lag by seconds under load: an advance whose indexed view would
    create a child or write the status reads the children again without them."""
    from tests.bench.opbench_stats import curriculum as bench_curriculum

    body = bench_curriculum("cur", "ns", 1)
    body["metadata"]["uid"] = "uid-cur"
    views: list[bool] = []

    def children_of(ns: str, name: str, fresh: Any = (), *, use_index: bool = True) -> Any:
        views.append(use_index)
        return {}

    created: list[str] = []
    monkeypatch.setattr(k8s, "get", lambda *a: body)
    monkeypatch.setattr(curriculum, "children_of", children_of)
    monkeypatch.setattr(curriculum, "create_child", lambda obj: created.append(obj["kind"]))
    monkeypatch.setattr(curriculum, "write", lambda *a: None)
    curriculum.advance("ns", "cur")
    assert views == [True, False]  # the indexed view said "create": read again, then create
    assert created == ["CaptionJob"]
