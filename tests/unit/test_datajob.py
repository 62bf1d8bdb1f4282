"""DataJob: spec validation (messages name the field), the Indexed Job it builds, the
status it derives from the Job, and the command line its pods run."""

from __future__ import annotations

import argparse
import copy
import importlib
from typing import Any

import pytest

from sailvl.api import SpecError, parse_resource
from sailvl.api.datajob import DataJobSpec
from sailvl.data.datajob import MODULES, command_line
from sailvl_operator import builders as b
from sailvl_operator import datajob as dj

JUDGE = {"endpoint": "http://judge:23333/v1", "model": "m", "apiKeySecret": {"name": "jk"}}


def datajob(**spec: Any) -> dict[str, Any]:
    base = {"task": "score", "input": "s3://b/in", "output": "s3://b/out",
            "score": {"judge": JUDGE}, "parallelism": 4}  # fmt: skip
    base.update(spec)
    return {"apiVersion": "sailvl.io/v1alpha1", "kind": "DataJob",
            "metadata": {"name": "dj1"}, "spec": {k: v for k, v in base.items() if v is not None}}  # fmt: skip


FILTER = {"task": "filter", "score": None, "parallelism": 1,
          "filter": {"min": {"relevance": 3}}}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"task": "sort"}, "spec.task: Input should be 'import', 'score' or 'filter'"),
        ({"output": "s3://b/in"}, "output must differ from input"),
        ({"input": "/local/path"}, "spec.input: String should match pattern"),
        ({"score": None}, "task score needs score.judge"),
        ({"score": {"judge": {**JUDGE, "endpoint": "judge:80"}}}, "spec.score.judge.endpoint"),
        ({"score": {"judge": JUDGE, "concurrency": 0}}, "spec.score.concurrency"),
        ({"import": {"format": "csv"}}, "spec.import.format"),
        ({"import": {}}, "task score does not read import: remove it"),
        ({**FILTER, "parallelism": 2}, "task filter runs one pod"),
        ({**FILTER, "filter": {}}, "task filter needs filter.min, filter.max or filter.balance"),
        ({**FILTER, "filter": {"min": {"relevance": 6}}}, "spec.filter.min.relevance"),
        ({**FILTER, "filter": {"min": {"relevance": 4}, "max": {"relevance": 2}}},
         "min.relevance is above max.relevance"),
        ({**FILTER, "filter": {"balance": "difficulty"}}, "set balance and perLevel together"),
        ({**FILTER, "filter": {"min": {"clarity": 2}}}, "spec.filter.min.clarity: unknown field"),
        ({"parallelism": 0}, "spec.parallelism"),
        ({"resources": {"limits": {"nvidia.com/gpu": 1}}},
         "spec.resources.limits[nvidia.com/gpu]: nvidia.com/gpu is an accelerator resource"),
        ({"template": {"env": [{"name": "SAILVL_SHARD_INDEX", "value": "3"}]}},
         "spec.template.env[0]"),
        ({"backoffLimitPerIndex": 99}, "spec.backoffLimitPerIndex"),
    ],
)  # fmt: skip
def test_invalid_spec_names_the_field(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_resource(datajob(**spec))
    assert any(needle in p for p in err.value.problems), err.value.problems


def test_name_too_long_for_the_pod_hostnames() -> None:
    obj = datajob(parallelism=100)
    obj["metadata"]["name"] = "d" * 59  # hostnames <name>-0-99: 59 + 5 > 63
    with pytest.raises(SpecError, match="may be at most 58 long"):
        parse_resource(obj)


def test_job_is_indexed_cpu_with_least_privilege() -> None:
    obj = datajob(storageSecret={"name": "s3"}, backoffLimitPerIndex=3,
                  resources={"requests": {"cpu": 2}})  # fmt: skip
    spec = parse_resource(obj)[2]
    job = dj.datajob_job("dj1", "ns", spec, b.Defaults())
    js = job["spec"]
    assert (js["completionMode"], js["completions"], js["parallelism"]) == ("Indexed", 4, 4)
    assert js["backoffLimitPerIndex"] == 3
    rule = js["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    pod = js["template"]["spec"]
    (ctr,) = pod["containers"]
    assert ctr["args"] == ["data", "job", "--config", "/etc/sailvl/job.yaml"]
    assert ctr["image"] == b.Defaults().evaluator
    assert ctr["resources"] == {"requests": {"cpu": "2"}}  # no accelerator requested
    env = {e["name"]: e for e in ctr["env"]}
    assert env["SAILVL_JUDGE_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "jk", "key": "apiKey"}
    }
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3"
    assert env["SAILVL_SHARD_COUNT"]["value"] == "4"
    assert "completion-index" in env["SAILVL_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert all("value" not in e for k, e in env.items() if k.startswith(("AWS_", "SAILVL_J")))
    assert pod["serviceAccountName"] == b.JOB_SERVICE_ACCOUNT
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert job["metadata"]["labels"]["sailvl.io/kind"] == "DataJob"
    # Only a score job gets the judge key.
    f = parse_resource(datajob(**FILTER))[2]
    fenv = dj.datajob_job("dj1", "ns", f, b.Defaults())["spec"]["template"]["spec"]
    assert "SAILVL_JUDGE_API_KEY" not in {e["name"] for e in fenv["containers"][0]["env"]}


def test_job_rbac_grants_no_datajob_rights() -> None:
    rules = [r for obj in b.job_rbac("ns") for r in obj.get("rules", [])]
    assert rules and not any("datajob" in res for r in rules for res in r["resources"])


def test_progress_from_the_job_status() -> None:
    job = {"spec": {"completions": 8},
           "status": {"completedIndexes": "0,2-4,7", "failedIndexes": "5"}}  # fmt: skip
    assert dj.progress(job) == {"shardsTotal": 8, "shardsDone": 5, "shardsFailed": 1}
    assert dj.progress({"spec": {"completions": 2}}) == {
        "shardsTotal": 2, "shardsDone": 0, "shardsFailed": 0}  # fmt: skip


def _parsed(spec: DataJobSpec, index: int, count: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    importlib.import_module(MODULES[spec.task]).add_arguments(parser)
    return parser.parse_args(command_line(spec, index, count))


def test_command_line_is_the_local_command() -> None:
    """Each task's spec becomes the local command's options, parsed by its own parser."""
    score = parse_resource(datajob())[2]
    a = _parsed(score, 3, 4)
    assert (a.input, a.output, a.judge_url, a.model) == ("s3://b/in", "s3://b/out",
                                                          JUDGE["endpoint"], "m")  # fmt: skip
    assert (a.shard_index, a.shard_count, a.concurrency, a.timeout) == (3, 4, 16, 60.0)
    imp = parse_resource(datajob(task="import", score=None, parallelism=2, **{
        "import": {"format": "webdataset", "imageRoot": "s3://b/img", "maxRejectRatio": 0.2,
                   "captionFromAltText": True}}))[2]  # fmt: skip
    a = _parsed(imp, 1, 2)
    assert (a.format, a.image_root, a.max_reject_ratio, a.caption_from_alt_text) == (
        "webdataset", "s3://b/img", 0.2, True)  # fmt: skip
    assert (a.shard_index, a.shard_count) == (1, 2)
    flt = copy.deepcopy(FILTER)
    flt["filter"] = {"min": {"relevance": 3, "difficulty": 2.5}, "max": {"complexity": 4},
                     "balance": "difficulty", "perLevel": 10, "seed": 7}  # fmt: skip
    a = _parsed(parse_resource(datajob(**flt))[2], 0, 1)
    assert sorted(a.min) == ["difficulty=2.5", "relevance=3"] and a.max == ["complexity=4"]
    assert (a.balance, a.per_level, a.seed, a.keep_unscored) == ("difficulty", 10, 7, False)
