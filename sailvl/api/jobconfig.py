"""The job config: the one file a child pod (or a local subprocess) is started with.

``sailvl train|caption|eval --config FILE`` reads it. It is the resource's *resolved*
spec (presets applied) with the resource's identity, written by one pure function
(:func:`job_config`) that the operator's ConfigMap and the local executor both use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .constants import API_VERSION
from .train import TrainStageSpec
from .validation import SpecError, parse_resource


def job_config(kind: str, name: str, namespace: str, spec: BaseModel) -> dict[str, Any]:
    if isinstance(spec, TrainStageSpec):
        spec = spec.resolved()
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def dump_job_config(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)


def load_job_config(path: str | Path) -> tuple[str, str, BaseModel]:
    """(kind, name, spec) from a job config file; :class:`SpecError` if it is invalid.

    The model only: the resource was checked in full when it was admitted, and what
    depends on the pod (the plan at the world size the launcher finds) is checked by the
    job itself, with the same function (``sailvl.train.preflight``)."""
    try:
        obj = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError([f"{path}: cannot read job config: {err}"]) from None
    return parse_resource(obj, checks=False)
