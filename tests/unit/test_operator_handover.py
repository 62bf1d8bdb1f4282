"""The hand-over reads a Curriculum's children and their Jobs from kopf's in-memory
indices (sailvl_operator.watchstate), not from list calls, and never trusts an indexed
child's scores older than the Job's end; it creates the next child before the reads that
decide the status write; its triggers never wait for one another."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sailvl.api import constants as c
from sailvl.api.flow import ChildState
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
        return self.jobs.get(selector.rsplit("=", 1)[1], [])


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
    """The eval's Job is Complete (its event woke the advance: ``fresh``), but the index
    still holds the EvalSuite before its scores (and the observe's Succeeded) arrived:
    the gate must see the fresh scores. Not woken by it, the advance reads nothing: a
    gate or a create then waits for the fresh reads of the status write."""
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
    assert (states["s0-eval"].scores, api.log) == ({}, [])
    states = curriculum.children_of("ns", "cur", {"cur-s0-eval"})
    assert states["s0-eval"].phase == c.SUCCEEDED
    assert states["s0-eval"].scores == {"synth-ocr": 71.5}
    # The fresh child agrees with the indexed Job (Complete): its Jobs are not listed.
    assert api.log == [("get", "EvalSuite", "cur-s0-eval")]


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


def test_advance_triggers_never_wait_for_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trigger during a run returns at once (a handler thread never waits on another
    run); the running thread runs once more with the fresh children of all of them.
    (On 1a060ff the second trigger waited on a lock until the first run ended.)"""
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
    second.join(5)
    assert not second.is_alive()  # returned while the first run still holds the key
    curriculum.advance("ns", "co", "c")
    curriculum.advance("ns", "co")
    assert runs == [frozenset({"a"})]
    release.set()
    first.join(10)
    assert runs == [frozenset({"a"}), frozenset({"b", "c"})]
    assert ("ns", "co") not in curriculum.RUNS.queued
    curriculum.advance("ns", "co", "d")  # nothing under way: runs in this thread
    assert runs[-1] == frozenset({"d"})


def test_an_error_does_not_lose_the_triggers_that_came_during_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[frozenset[str]] = []

    def failing(ns: str, name: str, fresh: frozenset[str]) -> None:
        runs.append(fresh)
        if len(runs) == 1:
            curriculum.advance("ns", "ce", "b")  # a trigger that comes during the run
            raise RuntimeError("API server unavailable")

    monkeypatch.setattr(curriculum, "_advance", failing)
    errors: list[BaseException] = []

    def outer() -> None:
        try:
            curriculum.advance("ns", "ce", "a")
        except RuntimeError as err:
            errors.append(err)

    th = threading.Thread(target=outer, daemon=True)
    th.start()
    th.join(10)
    assert not th.is_alive(), "the trigger during the run waited for it (a deadlock here)"
    assert [str(e) for e in errors] == ["API server unavailable"]
    assert runs == [frozenset({"a"}), frozenset({"b"})]  # b still ran, then the error
    assert ("ns", "ce") not in curriculum.RUNS.queued  # and the next trigger runs again
    curriculum.advance("ns", "ce")
    assert len(runs) == 3


def _advance_views(
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any],
    indexed: dict[str, ChildState],
    fresh_view: dict[str, ChildState] | None = None,
) -> tuple[list[bool], list[tuple[str, int]]]:
    """Stub the reads of an advance: ``indexed`` is what the indices say, ``fresh_view``
    what the list calls say (default: the same). Returns the views read (True: indexed)
    and each create as (kind, how many views had been read when it was made)."""
    views: list[bool] = []
    created: list[tuple[str, int]] = []

    def children_of(ns: str, name: str, fresh: Any = (), *, use_index: bool = True) -> Any:
        views.append(use_index)
        return dict(indexed if use_index else (fresh_view if fresh_view is not None else indexed))

    def create(obj: dict[str, Any]) -> dict[str, Any]:
        created.append((obj["kind"], len(views)))
        return {**obj, "metadata": {**obj["metadata"], "creationTimestamp": "T9"}}

    monkeypatch.setattr(k8s, "get", lambda *a: body)
    watchstate.bind({watchstate.CURRICULUM_INDEX: {("ns", body["metadata"]["name"]): [body]}})
    monkeypatch.setattr(curriculum, "children_of", children_of)
    monkeypatch.setattr(curriculum, "create_child", create)
    monkeypatch.setattr(curriculum, "write", lambda *a: None)
    getattr(curriculum, "_CREATED", {}).clear()
    return views, created


def _bench_body(stages: int = 1, gate: bool = False) -> dict[str, Any]:
    from tests.bench.opbench_stats import curriculum as bench_curriculum

    body = bench_curriculum("cur", "ns", stages)
    body["metadata"]["uid"] = "uid-cur"
    if gate:
        body["spec"]["stages"][0]["gate"] = {"metric": "synth-ocr", "threshold": 50}
    return body


def test_a_handover_creates_the_next_child_before_reading_again(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create is the hand-over's only call after the Curriculum's read: the fresh
    reads that decide the status write come after it (on 1a060ff the create waited
    for them: created == [("CaptionJob", 2)])."""
    views, created = _advance_views(monkeypatch, _bench_body(), {})
    curriculum.advance("ns", "cur")
    assert created == [("CaptionJob", 1)]  # made on the indexed view, before the re-read
    assert views == [True, False]  # the status is still written from fresh reads


def test_a_stage_eval_is_created_on_fresh_tokens(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage's eval takes the stage's reported tokens: it is created on the indexed
    view only when the stage's child was read again (its Job event woke the advance)."""
    done = ChildState(phase=c.SUCCEEDED, tokens=1000)
    indexed = {"caption": done, "s0": ChildState(phase=c.SUCCEEDED)}
    fresh_view = {"caption": done, "s0": done}
    views, created = _advance_views(monkeypatch, _bench_body(), indexed, fresh_view)
    curriculum.advance("ns", "cur")
    assert created == [("EvalSuite", 2)]  # woken by something else: after the fresh reads
    views, created = _advance_views(monkeypatch, _bench_body(), indexed, fresh_view)
    curriculum.advance("ns", "cur", "cur-s0")
    assert created == [("EvalSuite", 1)]  # woken by s0's Job: s0 was read again


@pytest.mark.parametrize(
    ("gate", "step", "fresh", "expected"),
    [
        (False, "caption", (), True),  # the first step
        (False, "s0", (), True),  # a CaptionJob feeds the stage nothing reported
        (False, "s0-eval", (), False),  # the stage's tokens
        (False, "s0-eval", ("cur-s0",), True),
        (False, "s1", (), True),  # an eval without a gate
        (True, "s1", (), False),  # a gate's scores
        (True, "s1", ("cur-s0-eval",), True),
        (False, "final-eval", (), True),
    ],
)
def test_which_steps_may_be_created_on_the_indexed_view(
    gate: bool, step: str, fresh: tuple[str, ...], expected: bool
) -> None:
    from sailvl.api import parse_spec
    from sailvl.api.compose import steps

    cur = parse_spec("Curriculum", _bench_body(2, gate)["spec"])
    target = next(x for x in steps(cur) if x.name == step)
    assert curriculum.handover_reads_fresh(cur, "cur", target, fresh) is expected


def test_a_child_created_here_stands_in_until_the_index_holds_it(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the seconds of watch lag after a create, the next trigger must not create the
    same child again (on 1a060ff every such trigger did: a 409 and a read each)."""
    body = _bench_body()
    indexed: dict[str, ChildState] = {}
    fresh_view = {"caption": ChildState(phase=c.PENDING, start_time="T9")}
    views, created = _advance_views(monkeypatch, body, indexed, fresh_view)
    curriculum.advance("ns", "cur")
    curriculum.advance("ns", "cur")  # the index still lacks cur-caption
    assert created == [("CaptionJob", 1)]
    assert curriculum._created_since("ns", "cur", {}) == {"caption": fresh_view["caption"]}
    indexed["caption"] = fresh_view["caption"]
    curriculum.advance("ns", "cur")
    assert ("ns", "cur") not in curriculum._CREATED  # the index holds it: forgotten
    del indexed["caption"]
    fresh_view.clear()
    curriculum.advance("ns", "cur")  # deleted by someone later: created again
    assert [k for k, _ in created] == ["CaptionJob", "CaptionJob"]


def test_a_stand_in_expires(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child created here but never seen by the index (deleted at once) is not waited
    for forever: after CREATED_TTL the next trigger creates it again."""
    views, created = _advance_views(monkeypatch, _bench_body(), {}, {})
    monkeypatch.setattr(curriculum, "CREATED_TTL", -1.0)
    curriculum.advance("ns", "cur")
    curriculum.advance("ns", "cur")
    assert [k for k, _ in created] == ["CaptionJob", "CaptionJob"]


def _caption_body() -> dict[str, Any]:
    import yaml

    from sailvl_operator import children  # noqa: F401  (module under test below)

    obj = yaml.safe_load((Path(__file__).parents[2] / "examples/captionjob.yaml").read_text())
    obj["metadata"].update(namespace="ns", uid="uid-cap")
    return dict(obj)


def test_a_childs_observe_reads_its_jobs_from_the_index(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Job event observes the Job's owner: the Jobs come from the index kopf
    updated for that event, not from a list call per event (23 Job lists per child in
    the 50-Curricula bench on 1a060ff)."""
    from sailvl_operator import children

    body = _caption_body()
    name = body["metadata"]["name"]
    job = _job(body, "CaptionJob", True)
    job["spec"] = {"completions": 4}
    indices[watchstate.JOB_INDEX][("ns", name)] = [job]
    api = Calls({name: body}, {name: [job]})
    patches: list[dict[str, Any]] = []
    monkeypatch.setattr(k8s, "get", api.get)
    monkeypatch.setattr(k8s, "list_jobs", api.list_jobs)
    monkeypatch.setattr(k8s, "patch_status", lambda kind, ns, n, st: patches.append(st))
    monkeypatch.setattr(children.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(children.kopf, "warn", lambda *a, **k: None)
    assert children.observe("CaptionJob", "ns", name) == c.SUCCEEDED
    assert api.log == [("get", "CaptionJob", name)]  # no Job list
    assert patches and patches[0]["phase"] == c.SUCCEEDED
    watchstate.unbind()  # without the index (no handler bound it): listed
    assert children.observe("CaptionJob", "ns", name) == c.SUCCEEDED
    assert ("list", "Job", f"{c.LABEL_KIND}=CaptionJob,{c.LABEL_NAME}={name}") in api.log


def test_an_advance_with_nothing_to_do_reads_nothing(
    indices: dict[str, dict[Any, list[Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexed Curriculum already holds the status the indexed children give: no
    read at all (on 1a060ff every advance read the Curriculum: 6 gets per child)."""
    from sailvl.api import parse_spec
    from sailvl.api.flow import decide

    body = _bench_body()
    view = {"caption": ChildState(phase=c.RUNNING, start_time="T1")}
    cur = parse_spec("Curriculum", body["spec"])
    body["status"] = curriculum._new_status(body, cur, view, decide(cur, view), full=True)
    views, created = _advance_views(monkeypatch, body, view)
    reads: list[str] = []
    monkeypatch.setattr(k8s, "get", lambda *a: reads.append(a[1]) or body)
    curriculum.advance("ns", "cur")
    assert (views, created, reads) == ([True], [], [])
    body["status"]["steps"][0]["phase"] = c.PENDING  # the index is behind: read, then write
    curriculum.advance("ns", "cur")
    assert reads == ["Curriculum"]


def test_background_runs_log_their_errors(caplog: pytest.LogCaptureFixture) -> None:
    from sailvl_operator import runs

    done = threading.Event()

    def fail(items: frozenset[str]) -> None:
        done.set()
        raise RuntimeError("boom")

    bg = runs.Background(workers=1)
    bg.submit("k", fail)
    assert done.wait(5)
    for _ in range(100):
        if "k" not in bg.runs.queued:
            break
        time.sleep(0.02)
    time.sleep(0.1)
    assert "background run of k failed" in caplog.text


def test_background_runs_carry_the_submitters_context() -> None:
    """kopf.info / kopf.warn find kopf's event queue in context variables: a background
    observe without them lost every event it posted (LookupError after the status
    write; the Experiment test saw no Decided event)."""
    import contextvars

    from sailvl_operator import runs

    var: contextvars.ContextVar[str] = contextvars.ContextVar("queue")
    seen: list[str] = []
    done = threading.Event()
    token = var.set("kopf's queue")
    try:
        runs.Background(workers=1).submit("k", lambda _: (seen.append(var.get()), done.set()))
    finally:
        var.reset(token)
    assert done.wait(5)
    assert seen == ["kopf's queue"]
