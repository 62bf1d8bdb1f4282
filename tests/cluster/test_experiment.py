"""An Experiment on the control plane (KWOK pods; the test decides their fates and
reports the eval scores, as eval pods would): a quickQuality study of two candidate
collections at two subset sizes (4 trials) with parallelism 2. The operator is
restarted in the middle and once more after the decision. Checked throughout by a
sampler: never more than 2 trials active; at the end: every trial's children created
exactly once (same uid before and after the restarts), the decision written once (one
Decided event, unchanged by a later restart), the metrics, and that deleting the
Experiment deletes its trials and its metric series."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sailvl_operator import experiment as op_experiment
from tests.cluster.controlplane.client import EXIT_ANNOTATION, Kubectl, wait_for
from tests.cluster.operator_driver import _json, get, operator, phase
from tests.cluster.test_operator import crds  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster

NAME = "qq"
SCORES = {"clean": 70.0, "noisy": 40.0}  # synth-ocr per candidate, at both sizes
TRIALS = ["clean-n64", "noisy-n64", "clean-n128", "noisy-n128"]  # start order
SYNTHETIC = ("synth-ocr", "synth-mcq", "synth-yesno")


def quick_quality(name: str, ns: str) -> dict[str, Any]:
    """Two candidates x two subset sizes on one 1-GPU node each, tiny model."""
    return {
        "apiVersion": "sailvl.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "storage": {"uri": f"s3://runs/{name}"},
            "model": {"preset": "tiny", "init": "s3://models/tiny-pretrained"},
            "defaults": {"accelerator": "nvidia", "nodes": 1, "devicesPerNode": 1},
            "template": {
                "stage": {"preset": "sft-knowledge", "globalBatch": 16},
                "eval": {"benchmarks": [{"name": "synth-ocr"}]},
            },
            "strategy": {
                "quickQuality": {
                    "candidates": [
                        {"name": c, "data": [{"name": c, "uri": f"s3://data/{c}"}]} for c in SCORES
                    ],
                    "samples": [64, 128],
                }
            },
            "selection": {"metric": "synth-ocr"},
            "parallelism": 2,
            "evalDataRoot": "s3://bench",
        },
    }


def trial_children(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    sel = f"sailvl.io/experiment={NAME}"
    return list(kubectl.json("get", "trainstages,evalsuites", "-n", ns, "-l", sel)["items"])


def active_trials(kubectl: Kubectl, ns: str) -> set[str]:
    """Trials started (a child exists) and not finished (their eval Job has not ended).
    Children are read before Jobs: a trial that finishes in between counts as done, so
    a trial started in between is not counted next to the one it replaced."""
    kids = trial_children(kubectl, ns)
    jobs = kubectl.json("get", "jobs", "-n", ns)["items"]
    ended = {
        (j["metadata"].get("labels") or {}).get("sailvl.io/name")
        for j in jobs
        if any(
            x.get("type") in ("Complete", "Failed") and x.get("status") == "True"
            for x in (j.get("status") or {}).get("conditions") or []
        )
    }
    started = {k["metadata"]["labels"]["sailvl.io/trial"] for k in kids}
    finished = {
        k["metadata"]["labels"]["sailvl.io/trial"]
        for k in kids
        if k["kind"] == "EvalSuite" and k["metadata"]["name"] in ended
    }
    return started - finished


@contextmanager
def sampler(kubectl: Kubectl, ns: str) -> Iterator[dict[str, Any]]:
    """Samples the active trials and every child's uid until the block ends."""
    seen: dict[str, Any] = {"max": 0, "samples": 0, "uids": {}, "errors": []}
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                active = active_trials(kubectl, ns)
                seen["max"] = max(seen["max"], len(active))
                seen["samples"] += 1
                for k in trial_children(kubectl, ns):
                    seen["uids"].setdefault(k["metadata"]["name"], set()).add(k["metadata"]["uid"])
            except Exception as err:  # reported by the test, not swallowed
                seen["errors"].append(repr(err))
            stop.wait(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=30)


def candidate_scores(suite: str) -> dict[str, float]:
    """The quickQuality test's scores: by candidate, the same at both sizes."""
    return {"synth-ocr": next(v for c, v in SCORES.items() if f"-{c}-" in suite)}


def hashed_scores(suite: str) -> dict[str, float]:
    """Scores that differ from suite to suite (deterministic), so every analysis has
    something to rank, fit or correlate."""
    h = zlib.crc32(suite.encode())
    return {b: 20.0 + (h >> (8 * i)) % 61 for i, b in enumerate(SYNTHETIC)}


def drive(
    kubectl: Kubectl,
    ns: str,
    done: Any,
    scores: Callable[[str], dict[str, float]] = candidate_scores,
    timeout: float = 240,
    passes: int = 0,
    exit_code: Callable[[str], int] = lambda owner: 0,
) -> None:
    """Until ``done()`` (or for ``passes`` passes): every running eval pod reports
    ``scores(<its EvalSuite>)``, then every running pod exits with
    ``exit_code(<its TrainStage or EvalSuite>)``."""
    deadline = time.monotonic() + timeout
    n = 0
    while not done():
        if passes and n >= passes:
            return
        n += 1
        assert time.monotonic() < deadline, "experiment did not finish in time"
        running = [
            p["metadata"]
            for p in kubectl.pods(ns, "app.kubernetes.io/part-of=sailvl")
            if (p.get("status") or {}).get("phase") == "Running"
            and EXIT_ANNOTATION not in (p["metadata"].get("annotations") or {})
        ]
        for meta in running:
            labels = meta.get("labels") or {}
            if labels.get("sailvl.io/kind") == "EvalSuite":
                suite = labels["sailvl.io/name"]
                kubectl(
                    "patch",
                    "evalsuite",
                    suite,
                    "-n",
                    ns,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    _json({"status": {"scores": scores(suite)}}),
                )
        by_code: dict[int, list[str]] = {}
        for meta in running:
            code = exit_code(meta["labels"]["sailvl.io/name"])
            by_code.setdefault(code, []).append(meta["name"])
        for code, names in by_code.items():  # one kubectl call per code: kubectl sets the pace
            kubectl("annotate", "pod", *names, "-n", ns, f"{EXIT_ANNOTATION}={code}", "--overwrite")
        time.sleep(0.2)


def events_of(kubectl: Kubectl, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    items = kubectl.json(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return [e for e in items if e["reason"] == reason]


def events(kubectl: Kubectl, ns: str, reason: str) -> list[dict[str, Any]]:
    return events_of(kubectl, ns, NAME, reason)


def gauge(name: str, ns: str, **labels: str) -> float | None:
    """A sample of the operator's registry (the operator runs in this process)."""
    value = REGISTRY.get_sample_value(name, {"namespace": ns, "experiment": NAME, **labels})
    return None if value is None else float(value)


def test_experiment_parallelism_restart_decision_once_and_delete(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    k, ns = cluster.kubectl, namespace
    k.apply(quick_quality(NAME, ns))
    exp = lambda: get(k, "experiment", NAME, ns).get("status") or {}  # noqa: E731
    with sampler(k, ns) as seen:
        with operator(cluster.kubeconfig, ns):
            # Two trials start; the other two wait while the first two run.
            wait_for(lambda: len(active_trials(k, ns)) >= 2, timeout=60, what="2 trials")
            time.sleep(2)
            assert {c["metadata"]["labels"]["sailvl.io/trial"] for c in trial_children(k, ns)} == {
                "clean-n64",
                "noisy-n64",
            }
            st = exp()
            assert st["phase"] == "Running" and st["trialsRunning"] == 2, st
            assert [r["phase"] for r in st["trials"]] == [
                "Running",
                "Running",
                "Pending",
                "Pending",
            ]
            drive(k, ns, lambda: (exp().get("trialsDone") or 0) >= 2)
        # The operator is down: the trials it left running go on (one pass of pod exits).
        time.sleep(1)
        drive(k, ns, lambda: False, passes=1)
        with operator(cluster.kubeconfig, ns):
            drive(k, ns, lambda: phase(k, "experiment", NAME, ns) in ("Succeeded", "Failed"))
            st = exp()
            assert gauge("sailvl_experiment_trials", ns, phase="Succeeded") == 4
            assert gauge("sailvl_experiment_trials", ns, phase="Running") == 0
            assert gauge("sailvl_experiment_best_score", ns) == SCORES["clean"]
    assert not seen["errors"], seen["errors"]
    assert seen["samples"] >= 5, seen  # the sampler ran (about 3 s a sample at load 24)
    assert seen["max"] == 2, f"at most 2 trials may be active: saw {seen['max']}"

    # The status table and the decision.
    assert st["phase"] == "Succeeded", st
    assert [r["name"] for r in st["trials"]] == TRIALS
    assert all(r["phase"] == "Succeeded" for r in st["trials"])
    for row in st["trials"]:
        cand = row["variant"]["candidate"]
        assert row["scores"] == {"synth-ocr": SCORES[cand]} and row["overall"] == SCORES[cand]
    assert st["trialsDone"] == st["trialsTotal"] == 4 and st["trialsRunning"] == 0
    assert st["best"] == "clean"
    assert st["decision"]["ranking"] == ["clean", "noisy"]
    assert st["decision"]["agreement"][0]["kendallTau"] == 1.0
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Succeeded"]["status"] == "True"
    assert conds["RankAgreement"]["status"] == "True"

    # No duplicate trial: each child once, the same object across the operator restart.
    kids = trial_children(k, ns)
    names = sorted(c["metadata"]["name"] for c in kids)
    assert names == sorted(
        [f"{NAME}-{t}-train" for t in TRIALS] + [f"{NAME}-{t}-train-eval" for t in TRIALS]
    )
    assert all(len(uids) == 1 for uids in seen["uids"].values()), seen["uids"]
    jobs = [j["metadata"]["name"] for j in k.json("get", "jobs", "-n", ns)["items"]]
    assert len(jobs) == len(set(jobs)) == 8
    assert len(events(k, ns, "TrialStarted")) == 4

    # The decision is written once: a third operator start changes nothing. The gauges
    # are dropped first, as in a fresh process: they must come back from the watch; and
    # the checks wait for an Experiment handler of the new operator to have run.
    assert len(events(k, ns, "Decided")) == 1
    op_experiment.observe_metrics({"metadata": {"namespace": ns, "name": NAME}}, "DELETED")
    assert gauge("sailvl_experiment_trials", ns, phase="Succeeded") is None
    runs = {"kind": "Experiment", "result": "success"}
    before = REGISTRY.get_sample_value("sailvl_operator_reconciles_total", runs) or 0
    with operator(cluster.kubeconfig, ns):
        wait_for(
            lambda: gauge("sailvl_experiment_trials", ns, phase="Succeeded") == 4,
            timeout=60,
            what="experiment gauges from the watch after a restart",
        )
        wait_for(
            lambda: (
                (REGISTRY.get_sample_value("sailvl_operator_reconciles_total", runs) or 0) > before
            ),
            timeout=60,
            what="an Experiment handler run after the restart",
        )
        time.sleep(1)
        after = exp()
        assert after["decision"] == st["decision"]
        assert after["completionTime"] == st["completionTime"]
        assert len(events(k, ns, "Decided")) == 1
        # Deleting the Experiment deletes its trials (owner references) and its series.
        k("delete", "experiment", NAME, "-n", ns, "--wait=false")
        wait_for(lambda: not trial_children(k, ns), timeout=60, what="trials garbage-collected")
        wait_for(
            lambda: gauge("sailvl_experiment_trials", ns, phase="Succeeded") is None,
            timeout=30,
            what="experiment series removed",
        )
    assert gauge("sailvl_experiment_best_score", ns) is None


def test_invalid_experiment_fails_before_any_trial(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    """A spec the schema accepts but validation refuses (a selection metric the eval
    does not produce): InvalidSpec in the status naming the field, one event, no child."""
    k, ns = cluster.kubectl, namespace
    bad = quick_quality("badmetric", ns)
    bad["spec"]["selection"] = {"metric": "mmlu"}
    with operator(cluster.kubeconfig, ns):
        k.apply(bad)
        conds = wait_for(
            lambda: (get(k, "experiment", "badmetric", ns).get("status") or {}).get("conditions"),
            timeout=30,
            what="InvalidSpec condition",
        )
        time.sleep(2)  # no retries, no crash loop: nothing more happens
    st = get(k, "experiment", "badmetric", ns)["status"]
    ready = next(c for c in conds if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.selection.metric" in ready["message"] and st["phase"] == "Failed"
    assert k.json("get", "trainstages,evalsuites,jobs", "-n", ns)["items"] == []
    reasons = [
        e["reason"]
        for e in k.json(
            "get", "events", "-n", ns, "--field-selector", "involvedObject.name=badmetric"
        )["items"]
    ]
    assert reasons.count("InvalidSpec") == 1


#: The other five strategies (tests/unit/experiment_builders): short names, and a key
#: of the decision each must write.
OTHERS = {
    "composition": ("co", "effects"),
    "incremental": ("inc", "accepted"),
    "checkpointScaling": ("cs", "fits"),
    "correlation": ("cr", "pearson"),
    "compare": ("cp", "curves"),
}


def test_the_other_strategies_run_to_a_decision(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    """composition, incremental, checkpointScaling, correlation and compare, side by
    side under one operator: every trial's children are created in order (correlation's
    pretrain-eval first, compare's chained stages, incremental one after the other),
    each Experiment succeeds with its strategy's decision and one Decided event."""
    from tests.unit.experiment_builders import experiment

    k, ns = cluster.kubectl, namespace
    for kind, (name, _) in OTHERS.items():
        obj = experiment(kind, name=name)
        obj["metadata"]["namespace"] = ns
        strategy = obj["spec"]["strategy"]
        # Shorter chains, the same shapes: incremental tries 2 candidates one after the
        # other, compare chains 2 stages against one stage of the same 64 samples.
        if kind == "incremental":
            strategy["incremental"]["candidates"] = strategy["incremental"]["candidates"][:2]
        if kind == "compare":
            plans = strategy["compare"]["plans"]
            plans[0]["stages"] = plans[0]["stages"][:2]
            plans[1]["stages"][0]["budget"] = {"steps": 8}
        k.apply(obj)

    def finished() -> bool:
        items = k.json("get", "experiments", "-n", ns)["items"]
        phases = [(x.get("status") or {}).get("phase") for x in items]
        return len(phases) == len(OTHERS) and all(p in ("Succeeded", "Failed") for p in phases)

    with operator(cluster.kubeconfig, ns):
        drive(k, ns, finished, scores=hashed_scores, timeout=420)
    for kind, (name, key) in OTHERS.items():
        st = get(k, "experiment", name, ns)["status"]
        assert st["phase"] == "Succeeded", (kind, st.get("message"), st.get("trials"))
        assert st["strategy"] == kind and st["trialsDone"] == st["trialsTotal"] > 0
        assert key in st["decision"] and st["decision"]["summary"], (kind, st["decision"])
        assert len(events_of(k, ns, name, "Decided")) == 1, kind
        kids = k.json(
            "get", "trainstages,evalsuites", "-n", ns, "-l", f"sailvl.io/experiment={name}"
        )
        steps = {
            (c["metadata"]["labels"]["sailvl.io/trial"], c["metadata"]["labels"]["sailvl.io/step"])
            for c in kids["items"]
        }
        assert len(steps) == len(kids["items"])  # one child per trial step
        assert {t for t, _ in steps} == {r["name"] for r in st["trials"]}


def test_a_failed_trial_is_a_row_and_the_others_decide(
    cluster: Any,
    crds: None,  # noqa: F811
    namespace: str,
) -> None:
    """Three candidates at one size, all at once; the train pod of one exits 2 (a
    configuration error: no group restart). That trial is Failed with its reason, one
    TrialFailed event; the other two finish and the ranking is theirs."""
    k, ns = cluster.kubectl, namespace
    obj = quick_quality("qf", ns)
    qq = obj["spec"]["strategy"]["quickQuality"]
    qq["candidates"].append({"name": "broken", "data": [{"name": "b", "uri": "s3://data/b"}]})
    qq["samples"] = [64]
    obj["spec"]["parallelism"] = 3
    k.apply(obj)

    def exit_code(owner: str) -> int:  # 2: a configuration error, failed at once
        return 2 if owner.startswith("qf-broken-") else 0

    with operator(cluster.kubeconfig, ns):
        drive(
            k,
            ns,
            lambda: phase(k, "experiment", "qf", ns) in ("Succeeded", "Failed"),
            exit_code=exit_code,
        )
    st = get(k, "experiment", "qf", ns)["status"]
    rows = {r["name"]: r for r in st["trials"]}
    assert rows["broken-n64"]["phase"] == "Failed", rows
    assert "train" in (rows["broken-n64"].get("message") or ""), rows["broken-n64"]
    assert rows["clean-n64"]["phase"] == rows["noisy-n64"]["phase"] == "Succeeded"
    assert st["phase"] == "Succeeded" and st["decision"]["ranking"] == ["clean", "noisy"], st
    assert st["trialsDone"] == 3
    assert len(events_of(k, ns, "qf", "TrialFailed")) == 1
    assert k.get("evalsuite", "qf-broken-n64-train-eval", ns) is None  # never started
