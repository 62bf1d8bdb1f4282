"""Valid Experiment resources for the experiment tests, one per strategy (tiny, CPU)."""

from __future__ import annotations

import copy
from typing import Any

API = "sailvl.io/v1alpha1"


def _ds(name: str, weight: float = 1.0) -> dict[str, Any]:
    return {"uri": f"file:///data/{name}", "weight": weight}


STRATEGIES: dict[str, dict[str, Any]] = {
    "quickQuality": {
        "candidates": [
            {"name": "clean", "data": [_ds("clean")]},
            {"name": "c30", "data": [_ds("c30")]},
            {"name": "c70", "data": [_ds("c70")]},
        ],
        "samples": [64, 32],
    },
    "composition": {
        "groups": [
            {"name": "ocr", "data": [_ds("ocr")]},
            {"name": "mcq", "data": [_ds("mcq", 2.0)]},
            {"name": "noisy", "data": [_ds("noisy")]},
        ]
    },
    "incremental": {
        "base": [_ds("base")],
        "candidates": [
            {"name": "clean", "data": [_ds("clean")]},
            {"name": "c70", "data": [_ds("c70")]},
            {"name": "dup", "data": [_ds("base")]},
        ],
        "tolerance": 1.0,
    },
    "checkpointScaling": {
        "checkpoints": [
            {"name": "a", "uri": "file:///ck/a", "tokens": 1000},
            {"name": "b", "uri": "file:///ck/b", "tokens": 10000},
            {"name": "c", "uri": "file:///ck/c", "tokens": 100000},
        ],
        "anneal": {"data": [_ds("anneal")], "budget": {"samples": 32}},
    },
    "correlation": {
        "checkpoints": [
            {"name": "p1", "uri": "file:///ck/p1"},
            {"name": "p2", "uri": "file:///ck/p2"},
            {"name": "p3", "uri": "file:///ck/p3"},
        ],
        "pretrainEval": {"benchmarks": [{"name": "synth-ocr"}]},
    },
    "compare": {
        "plans": [
            {
                "name": "three",
                "stages": [
                    {"name": "know", "data": [_ds("k")], "budget": {"samples": 32}},
                    {"name": "instr", "data": [_ds("i")], "budget": {"samples": 32}},
                    {"name": "pref", "data": [_ds("p")], "budget": {"samples": 32}},
                ],
            },
            {
                "name": "allin",
                "stages": [
                    {"name": "all", "data": [_ds("k"), _ds("i"), _ds("p")], "budget": {"steps": 12}}
                ],
            },
        ]
    },
}

# The template stage fields each strategy needs (the others choose data / budget).
TEMPLATE_STAGE: dict[str, dict[str, Any]] = {
    "quickQuality": {},
    "composition": {"budget": {"samples": 32}},
    "incremental": {"budget": {"samples": 32}},
    "checkpointScaling": {},
    "correlation": {"data": [_ds("sft")], "budget": {"samples": 32}},
    "compare": {},
}


def experiment(kind: str = "quickQuality", name: str = "exp", **over: Any) -> dict[str, Any]:
    """A valid Experiment of strategy ``kind``; ``over`` replaces top-level spec fields."""
    spec: dict[str, Any] = {
        "storage": {"uri": "file:///runs/exp"},
        "model": {"preset": "tiny", "init": "file:///models/tiny-init"},
        "defaults": {
            "accelerator": "cpu",
            "devicesPerNode": 1,
            "deepspeed": {"zeroStage": 2, "precision": "fp32"},
            "packing": {"maxTokens": 2048, "maxImages": 32},
            "maxRestarts": 0,
        },
        "template": {
            "stage": {
                "preset": "sft-instruction",
                "maxTiles": 4,
                "globalBatch": 8,
                **copy.deepcopy(TEMPLATE_STAGE[kind]),
            },
            "eval": {"suite": "synthetic"},
        },
        "strategy": {kind: copy.deepcopy(STRATEGIES[kind])},
        "parallelism": 2,
        "evalDataRoot": "file:///bench",
    }
    spec.update(over)
    return {"apiVersion": API, "kind": "Experiment", "metadata": {"name": name}, "spec": spec}
