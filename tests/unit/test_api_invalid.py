"""Bad input: every invalid spec is rejected with a message that names the field."""

from __future__ import annotations

import pytest

from sailvl.api import SpecError, parse_resource

from .api_builders import DELETE, caption_job, curriculum, eval_suite, mutate, train_stage

TS, CJ, ES, CU = train_stage(), caption_job(), eval_suite(), curriculum()

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
