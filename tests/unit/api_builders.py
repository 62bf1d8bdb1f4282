"""Fluent builders of valid resources for tests (jobset's MakeJobSet(...).Obj() style)."""

from __future__ import annotations

import copy
from typing import Any

API = "sailvl.io/v1alpha1"


def _obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}


def train_stage(**over: Any) -> dict[str, Any]:
    spec = {
        "preset": "pretrain-alignment",
        "model": {"preset": "tiny"},
        "data": [{"uri": "file:///data/ocr"}],
        "budget": {"steps": 10},
        "accelerator": "cpu",
        "nodes": 1,
        "devicesPerNode": 2,
        "globalBatch": 8,
        "output": "file:///runs/out",
    }
    spec.update(over)
    return _obj("TrainStage", "ts", spec)


def caption_job(**over: Any) -> dict[str, Any]:
    spec = {
        "input": "s3://b/in",
        "output": "s3://b/out",
        "model": {"uri": "s3://m/captioner"},
        "backend": "transformers",
        "accelerator": "cpu",
    }
    spec.update(over)
    return _obj("CaptionJob", "cj", spec)


def eval_suite(**over: Any) -> dict[str, Any]:
    spec = {
        "model": "s3://b/final",
        "benchmarks": [{"name": "synth-ocr", "data": "s3://b/synth-ocr.tsv"}],
        "output": "s3://b/eval",
    }
    spec.update(over)
    return _obj("EvalSuite", "es", spec)


def curriculum(**over: Any) -> dict[str, Any]:
    stages = [
        {
            "name": "align",
            "preset": "pretrain-alignment",
            "data": [{"fromStep": "caption"}],
            "budget": {"steps": 5},
            "globalBatch": 8,
            "eval": {"benchmarks": [{"name": "synth-ocr"}]},
            "gate": {"metric": "synth-ocr", "threshold": 0.0},
        },
        {
            "name": "sft",
            "preset": "sft-knowledge",
            "data": [{"uri": "file:///data/sft"}],
            "budget": {"samples": 64},
            "globalBatch": 8,
        },
    ]
    spec = {
        "storage": {"uri": "file:///runs/demo"},
        "model": {"preset": "tiny"},
        "defaults": {"accelerator": "cpu", "devicesPerNode": 2},
        "caption": {
            "input": "file:///data/raw",
            "output": "file:///runs/demo/caption",
            "model": {"uri": "file:///models/tiny"},
            "backend": "transformers",
            "accelerator": "cpu",
        },
        "stages": stages,
        "evalDataRoot": "file:///bench",
        "finalEval": {"suite": "synthetic"},
    }
    spec.update(over)
    return _obj("Curriculum", "demo", spec)


def mutate(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with value=DELETE remove) a dotted path like 'spec.stages.1.budget'."""
    out = copy.deepcopy(obj)
    parts = path.split(".")
    node: Any = out
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = parts[-1]
    if value is DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


DELETE = object()
