"""Per-benchmark generation settings: long-answer benchmarks are not cut to a short budget.

One ``maxNewTokens`` for every benchmark truncated MMVet and DetailCaps answers (64
tokens). Each known benchmark now carries its own budget (VLMEvalKit's, see
``sailvl.api.benchmarks``); an EvalSuite may override it per benchmark or for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sailvl.api.benchmarks import BENCHMARKS, DEFAULT_MAX_NEW_TOKENS, max_new_tokens_for
from sailvl.api.evalsuite import EvalSuiteSpec
from sailvl.eval.config import BenchmarkConfig, EvalConfig, from_spec
from sailvl.eval.runner import run_eval
from sailvl.eval.synthetic import write_synthetic

BASE = {"model": "file:///m", "dataRoot": "s3://b/bench", "output": "s3://b/out"}


def _budgets(spec: dict[str, Any]) -> dict[str, int]:
    cfg = from_spec(EvalSuiteSpec.model_validate({**BASE, **spec}), env={})
    return {b.name: cfg.budget(b) for b in cfg.benchmarks}


def test_suite_benchmarks_get_their_own_budget() -> None:
    got = _budgets({"suite": "opensource"})
    # Long free-form answers (judge-scored) get a long budget; choices a short one.
    assert got["mmvet"] >= 1024 and got["mathvista"] >= 1024
    assert got["mmstar"] < got["mmvet"] and got["pope"] < got["mmvet"]
    assert got == {n: BENCHMARKS[n].max_new_tokens for n in got}
    assert _budgets({"suite": "understanding"})["detailcaps"] >= 1024
    # A benchmark the table does not know keeps the old default.
    assert max_new_tokens_for("my-bench") == DEFAULT_MAX_NEW_TOKENS


def test_overrides_per_benchmark_and_for_all() -> None:
    got = _budgets(
        {
            "suite": "opensource",
            "benchmarks": [{"name": "mmvet", "maxNewTokens": 2048}],
            "generation": {"maxNewTokens": 8},
        }
    )
    assert got["mmvet"] == 2048  # the benchmark's own setting wins
    assert got["mmstar"] == 8 and got["docvqa"] == 8  # generation applies to the rest
    with pytest.raises(ValidationError, match="maxNewTokens"):
        EvalSuiteSpec.model_validate({**BASE, "benchmarks": [{"name": "mmvet", "maxNewTokens": 0}]})
    with pytest.raises(ValueError, match="max_new_tokens"):
        BenchmarkConfig(name="x", data="d", scorer="anls", max_new_tokens=0)


def test_runner_passes_each_benchmark_its_budget(tmp_path: Path) -> None:
    uris = write_synthetic(f"file://{tmp_path}/data", n=4)
    seen: dict[str, set[int]] = {}

    class Recorder:
        def generate(
            self, batch: Sequence[tuple[list[Any], str]], *, max_new_tokens: int
        ) -> list[str]:
            for _, prompt in batch:
                seen.setdefault(prompt, set()).add(max_new_tokens)
            return ["Yes"] * len(batch)

    benches = [
        BenchmarkConfig(name="synth-ocr", data=uris["synth-ocr"], scorer="anls", max_new_tokens=7),
        BenchmarkConfig(name="synth-yesno", data=uris["synth-yesno"], scorer="pope"),
    ]
    cfg = EvalConfig(model="file:///m", output=f"file://{tmp_path}/out", benchmarks=benches)
    run_eval(cfg, Recorder())
    budgets = set().union(*seen.values())
    assert budgets == {7, BENCHMARKS["synth-yesno"].max_new_tokens}
