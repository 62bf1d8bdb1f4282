"""Bad input: every invalid spec is rejected with a message that names the field."""

from __future__ import annotations

import pytest

from sailvl.api import SpecError, parse_resource

from .api_builders import DELETE, caption_job, curriculum, eval_suite, mutate, train_stage

TS, CJ, ES, CU = train_stage(), caption_job(), eval_suite(), curriculum()
TS_NV = train_stage(accelerator="nvidia")
ES_SUITE = eval_suite(dataRoot="s3://b/bench")
ES_CPU = eval_suite(accelerator="cpu", devicesPerPod=0)
CU_FINAL = mutate(CU, "spec.stages.1.eval", {"benchmarks": [{"name": "synth-ocr"}]})
CU_UNDERSTAND = mutate(CU, "spec.stages.0.eval", {"suite": "understanding"})
CJ_ASCEND_0 = {"accelerator": "ascend", "devicesPerPod": 0}
MODEL_BOTH = {"preset": "tiny", "init": "s3://m/full", "llm": "s3://m/llm"}
LIM_GPU = {"limits": {"nvidia.com/gpu": 1}}
LIM_ASCEND = {"limits": {"huawei.com/Ascend910": 8}}
REQ_OVER = {"requests": {"memory": "32Gi"}, "limits": {"memory": "16Gi"}}
ENV_BOTH = {"name": "X", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}
ENV_REF = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}
TOL_EFFECT = {"key": "k", "operator": "Exists", "effect": "NoScheduled"}
TOL_VALUE = {"key": "k", "operator": "Exists", "value": "v"}
TOL_SECONDS = {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}
MOUNT_MISSING = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
MOUNT_TWICE = {
    "volumes": [{"name": "d", "emptyDir": {}}],
    "volumeMounts": [{"name": "d", "mountPath": "/etc/sailvl"}],
}
AFF_BAD = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Equals"}]}]
        }
    }
}


def env(entry: dict) -> dict:
    return {"env": [entry]}


def tol(entry: dict) -> dict:
    return {"tolerations": [entry]}


# (id, object, path fragment that the message must name)
CASES = [
    # --- TrainStage
    ("ts-no-data", mutate(TS, "spec.data", DELETE), "spec.data"),
    ("ts-empty-data", mutate(TS, "spec.data", []), "spec.data"),
    ("ts-no-budget", mutate(TS, "spec.budget", DELETE), "spec.budget"),
    ("ts-zero-budget", mutate(TS, "spec.budget", {"tokens": 0}), "spec.budget.tokens"),
    ("ts-negative-budget", mutate(TS, "spec.budget", {"steps": -3}), "spec.budget.steps"),
    ("ts-two-budgets", mutate(TS, "spec.budget", {"steps": 3, "tokens": 9}), "spec.budget"),
    ("ts-empty-budget", mutate(TS, "spec.budget", {}), "spec.budget"),
    ("ts-unknown-preset", mutate(TS, "spec.preset", "pretrain-everything"), "spec.preset"),
    ("ts-unknown-accel", mutate(TS, "spec.accelerator", "tpu"), "spec.accelerator"),
    ("ts-bad-uri", mutate(TS, "spec.output", "ftp://x/y"), "spec.output"),
    ("ts-bad-data-uri", mutate(TS, "spec.data.0.uri", "/plain/path"), "spec.data[0].uri"),
    ("ts-tiles-too-big", mutate(TS, "spec.maxTiles", 40), "spec"),
    ("ts-zero-tiles", mutate(TS, "spec.maxTiles", 0), "spec.maxTiles"),
    ("ts-unknown-module", mutate(TS, "spec.trainable", ["vision", "decoder"]), "spec.trainable"),
    ("ts-dup-module", mutate(TS, "spec.trainable", ["llm", "llm"]), "spec"),
    ("ts-zero-stage-4", mutate(TS, "spec.deepspeed", {"zeroStage": 4}), "spec.deepspeed"),
    ("ts-bad-precision", mutate(TS, "spec.deepspeed", {"precision": "fp8"}), "spec.deepspeed"),
    ("ts-nodes-zero", mutate(TS, "spec.nodes", 0), "spec.nodes"),
    ("ts-nodes-string", mutate(TS, "spec.nodes", "many"), "spec.nodes"),
    ("ts-batch-lt-world", mutate(TS, "spec.globalBatch", 1), "globalBatch"),
    ("ts-lr-negative", mutate(TS, "spec.optimizer", {"lr": -1}), "spec.optimizer.lr"),
    ("ts-no-preset-no-lr", mutate(TS, "spec.preset", DELETE), "spec"),
    ("ts-packing-too-small", mutate(TS, "spec.packing", {"maxTokens": 64}), "maxTokens"),
    ("ts-unknown-field", mutate(TS, "spec.learningRate", 1e-4), "spec.learningRate"),
    ("ts-both-uri-fromstep", mutate(TS, "spec.data.0.fromStep", "caption"), "spec.data[0]"),
    ("ts-data-weight-zero", mutate(TS, "spec.data.0.weight", 0), "spec.data[0].weight"),
    ("ts-model-preset", mutate(TS, "spec.model", {"preset": "70b"}), "spec.model.preset"),
    ("ts-spec-list", mutate(TS, "spec", [1, 2]), "spec"),
    ("ts-restarts-neg", mutate(TS, "spec.maxRestarts", -1), "spec.maxRestarts"),
    ("ts-ckpt-zero", mutate(TS, "spec.checkpoint", {"intervalSteps": 0}), "intervalSteps"),
    # --- CaptionJob
    ("cj-no-input", mutate(CJ, "spec.input", DELETE), "spec.input"),
    ("cj-no-model", mutate(CJ, "spec.model", DELETE), "spec.model"),
    ("cj-same-io", mutate(CJ, "spec.output", "s3://b/in"), "spec"),
    ("cj-bad-backend", mutate(CJ, "spec.backend", "vllm"), "spec.backend"),
    ("cj-lmdeploy-cpu", mutate(CJ, "spec.backend", "lmdeploy"), "spec"),
    ("cj-bad-lang", mutate(CJ, "spec.prompt", {"language": "fr"}), "spec.prompt.language"),
    ("cj-tp-zero", mutate(CJ, "spec.engine", {"tp": 0}), "spec.engine.tp"),
    ("cj-filter-bounds", mutate(CJ, "spec.filter", {"minChars": 50, "maxChars": 10}), "filter"),
    ("cj-parallelism-0", mutate(CJ, "spec.parallelism", 0), "spec.parallelism"),
    ("cj-bad-model-uri", mutate(CJ, "spec.model.uri", "hf://x"), "spec.model.uri"),
    ("cj-temp-high", mutate(CJ, "spec.generation", {"temperature": 9}), "temperature"),
    # --- EvalSuite
    ("es-nothing", mutate(ES, "spec.benchmarks", []), "spec"),
    ("es-unknown-suite", mutate(ES, "spec.suite", "everything"), "spec.suite"),
    ("es-unknown-bench", mutate(ES, "spec.benchmarks.0.name", "mybench"), "spec.benchmarks[0]"),
    ("es-bad-scorer", mutate(ES, "spec.benchmarks.0.scorer", "bleu"), "scorer"),
    ("es-subset-0", mutate(ES, "spec.benchmarks.0.subset", 0), "subset"),
    ("es-no-data-root", mutate(ES, "spec.benchmarks.0.data", DELETE), "dataRoot"),
    (
        "es-dup-bench",
        mutate(ES, "spec.benchmarks", [{"name": "pope", "data": "s3://a/p.tsv"}] * 2),
        "unique",
    ),
    ("es-judge-url", mutate(ES, "spec.judge", {"endpoint": "judge:80", "model": "m"}), "endpoint"),
    ("es-no-output", mutate(ES, "spec.output", DELETE), "spec.output"),
    # --- Curriculum
    ("cu-no-stages", mutate(CU, "spec.stages", []), "spec.stages"),
    ("cu-dup-stage", mutate(CU, "spec.stages.1.name", "align"), "unique"),
    ("cu-reserved-name", mutate(CU, "spec.stages.1.name", "caption"), "reserved"),
    ("cu-bad-name", mutate(CU, "spec.stages.1.name", "SFT_1"), "spec.stages[1].name"),
    ("cu-gate-unknown", mutate(CU, "spec.stages.0.gate.metric", "mmlu"), "gate.metric"),
    ("cu-gate-no-eval", mutate(CU, "spec.stages.0.eval", DELETE), "spec.stages[0]"),
    ("cu-fromstep-later", mutate(CU, "spec.stages.0.data.0.fromStep", "sft"), "stages[0].data"),
    ("cu-no-caption", mutate(CU, "spec.caption", DELETE), "stages[0].data"),
    ("cu-stage-budget", mutate(CU, "spec.stages.1.budget", {"samples": 0}), "spec.stages[1]"),
    ("cu-stage-preset", mutate(CU, "spec.stages.1.preset", "dpo"), "spec.stages[1].preset"),
    ("cu-storage-uri", mutate(CU, "spec.storage.uri", "runs/demo"), "spec.storage.uri"),
    ("cu-stage-tiles", mutate(CU, "spec.stages.1.maxTiles", 99), "spec.stages[1]"),
    ("cu-override-bad", mutate(CU, "spec.stages.1.overrides", {"nodes": 0}), "spec.stages[1]"),
    ("cu-long-name", mutate(CU, "metadata.name", "a" * 50), "metadata.name"),
    ("cu-final-eval-root", mutate(CU, "spec.evalDataRoot", DELETE), "finalEval"),
    # --- semantic checks (sailvl.api.checks / curriculum_checks / kube): what the cluster
    # or the trainer would refuse later, refused before any child exists.
    ("ts-fromstep-alone", mutate(TS, "spec.data", [{"fromStep": "caption"}]), "data[0].fromStep"),
    ("ts-8b-no-llm", mutate(TS, "spec.model", {"preset": "2b"}), "spec.model.llm"),
    ("ts-init-and-parts", mutate(TS, "spec.model", MODEL_BOTH), "spec.model.init: set model.init"),
    ("ts-batch-world", mutate(TS, "spec.devicesPerNode", 3), "spec.globalBatch"),
    ("ts-two-accels", mutate(TS_NV, "spec.resources", LIM_ASCEND), "limits[huawei.com/Ascend910]"),
    ("ts-cpu-gpus", mutate(TS, "spec.resources", LIM_GPU), "limits[nvidia.com/gpu]"),
    ("ts-own-accel", mutate(TS_NV, "spec.resources", LIM_GPU), "set devicesPerNode instead"),
    ("ts-other-gpu", mutate(TS_NV, "spec.resources", {"limits": {"amd.com/gpu": 1}}), "amd.com"),
    ("ts-quantity", mutate(TS, "spec.resources", {"requests": {"memory": "16GB"}}), "[memory]"),
    ("ts-quantity-neg", mutate(TS, "spec.resources", {"requests": {"cpu": "-1"}}), "[cpu]"),
    ("ts-req-over-lim", mutate(TS, "spec.resources", REQ_OVER), "requests[memory]: 32Gi is above"),
    ("ts-res-name", mutate(TS, "spec.resources", {"limits": {"gpus": 1}}), "limits[gpus]"),
    ("ts-ext-fraction", mutate(TS, "spec.resources", {"limits": {"x.io/f": "0.5"}}), "whole"),
    (
        "ts-ext-no-limit",
        mutate(TS, "spec.resources", {"requests": {"x.io/f": 1}}),
        "limits[x.io/f]",
    ),
    ("ts-name-long", mutate(TS, "metadata.name", "a" * 60), "at most 59"),
    ("ts-name-dot", mutate(TS, "metadata.name", "a.b"), "metadata.name"),
    ("ts-name-digit", mutate(TS, "metadata.name", "1abc"), "starting with a letter"),
    ("ts-label-key", mutate(TS, "spec.template", {"labels": {"a b": "x"}}), "labels[a b]"),
    ("ts-label-value", mutate(TS, "spec.template", {"labels": {"t": "a" * 64}}), "labels[t]"),
    ("ts-label-ours", mutate(TS, "spec.template", {"labels": {"sailvl.io/x": "1"}}), "operator"),
    ("ts-node-selector", mutate(TS, "spec.template", {"nodeSelector": {"g": "a b"}}), "[g]"),
    ("ts-annotation", mutate(TS, "spec.template", {"annotations": {"/x": "1"}}), "annotations"),
    ("ts-env-no-name", mutate(TS, "spec.template", env({"value": "1"})), "env[0].name: required"),
    ("ts-env-reserved", mutate(TS, "spec.template", env({"name": "NNODES"})), "env[0].name"),
    ("ts-env-int", mutate(TS, "spec.template", env({"name": "X", "value": 1})), "env[0].value"),
    ("ts-env-bad-name", mutate(TS, "spec.template", env({"name": "A=B"})), "env[0].name"),
    ("ts-env-both", mutate(TS, "spec.template", env(ENV_BOTH)), "env[0].valueFrom"),
    ("ts-env-ref", mutate(TS, "spec.template", env(ENV_REF)), "secretKeyRef.key: required"),
    (
        "ts-tol-operator",
        mutate(TS, "spec.template", tol({"key": "k", "operator": "In"})),
        "].operator",
    ),
    ("ts-tol-effect", mutate(TS, "spec.template", tol(TOL_EFFECT)), "tolerations[0].effect"),
    ("ts-tol-no-key", mutate(TS, "spec.template", tol({"value": "x"})), "must be Exists"),
    ("ts-tol-value", mutate(TS, "spec.template", tol(TOL_VALUE)), "tolerations[0].value"),
    ("ts-tol-seconds", mutate(TS, "spec.template", tol(TOL_SECONDS)), "NoExecute"),
    ("ts-tol-unknown", mutate(TS, "spec.template", tol({"operator": "Exists", "x": 1})), "[0].x"),
    (
        "ts-tol-bad-key",
        mutate(TS, "spec.template", tol({"key": "a b", "operator": "Exists"})),
        "key",
    ),
    ("ts-mount-missing", mutate(TS, "spec.template", MOUNT_MISSING), "volumeMounts[0].name"),
    ("ts-mount-twice", mutate(TS, "spec.template", MOUNT_TWICE), "volumeMounts[0].mountPath"),
    (
        "ts-volume-name",
        mutate(TS, "spec.template", {"volumes": [{"name": "A", "x": {}}]}),
        "volumes",
    ),
    ("ts-pull-secret", mutate(TS, "spec.template", {"imagePullSecrets": [{}]}), "imagePullSecrets"),
    ("ts-sa-name", mutate(TS, "spec.template", {"serviceAccountName": "A_b"}), "serviceAccount"),
    ("ts-image", mutate(TS, "spec.template", {"image": "repo/x: 1"}), "spec.template.image"),
    ("ts-affinity-op", mutate(TS, "spec.template", {"affinity": AFF_BAD}), "operator"),
    ("ts-kueue-queue", mutate(TS, "spec.queue", {"kueueQueue": "a b"}), "spec.queue.kueueQueue"),
    ("cj-ascend-0", mutate(CJ, "spec", {**CJ["spec"], **CJ_ASCEND_0}), "spec.devicesPerPod"),
    ("cj-name-long", mutate(CJ, "metadata.name", "c" * 60), "at most 59"),
    ("es-judge-missing", mutate(ES, "spec.benchmarks.0.name", "mmvet"), "spec.judge: required"),
    ("es-judge-suite", mutate(ES_SUITE, "spec.suite", "understanding"), "detailcaps (caption_"),
    ("es-nvidia-0", mutate(ES, "spec.devicesPerPod", 0), "spec.devicesPerPod"),
    ("es-cpu-gpus", mutate(ES_CPU, "spec.resources", LIM_GPU), "a CPU pod requests no accel"),
    ("es-name-dot", mutate(ES, "metadata.name", "e.s"), "metadata.name"),
    ("cu-eval-collision", mutate(CU, "spec.stages.1.name", "align-eval"), "'align-eval' is used"),
    ("cu-final-collision", mutate(CU_FINAL, "spec.stages.1.name", "final"), "'final-eval' is used"),
    ("cu-gate-category", mutate(CU, "spec.stages.0.gate.metric", "hallucination"), "gate.metric"),
    ("cu-gate-overall", mutate(CU_UNDERSTAND, "spec.stages.0.gate.metric", "overall"), "overall"),
    ("cu-gate-too-high", mutate(CU, "spec.stages.0.gate.threshold", 101), "gate.threshold"),
    ("cu-judge-missing", mutate(CU_UNDERSTAND, "spec.stages.0.gate.metric", "idl-wds"), "judge"),
    ("cu-name-dot", mutate(CU, "metadata.name", "a.b"), "metadata.name"),
    ("cu-name-47", mutate(CU, "metadata.name", "c" * 49), "may be at most 48"),
    (
        "cu-defaults-tol",
        mutate(CU, "spec.defaults.template", tol({"value": "x"})),
        "defaults.templ",
    ),
    ("cu-override-res", mutate(CU, "spec.stages.1.overrides", {"resources": LIM_GPU}), "overrides"),
    ("cu-2b-no-llm", mutate(CU, "spec.model", {"preset": "2b"}), "spec.model.llm: model preset"),
    ("cu-stage-batch", mutate(CU, "spec.stages.1.globalBatch", 9), "spec.stages[1].globalBatch"),
    ("cu-defaults-world", mutate(CU, "spec.defaults.devicesPerNode", 3), "globalBatch 8 does not"),
    # --- the envelope
    ("env-kind", mutate(CU, "kind", "Pipeline"), "kind"),
    ("env-api", mutate(CU, "apiVersion", "sailvl.io/v1"), "apiVersion"),
    ("env-no-name", mutate(CU, "metadata", {}), "metadata.name"),
    ("env-no-spec", mutate(CU, "spec", DELETE), "spec"),
]


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("obj,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_spec_names_the_field(obj: dict, needle: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_resource(obj)
    message = str(err.value)
    assert needle in message, message
    assert all(": " in p for p in err.value.problems)


@pytest.mark.parametrize("obj", [TS, CJ, ES, CU], ids=["ts", "cj", "es", "cu"])
def test_base_objects_are_valid(obj: dict) -> None:
    parse_resource(obj)
