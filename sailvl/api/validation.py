"""Parse a resource (or its spec) into a model, or fail with messages naming the fields.

Every problem becomes one line ``<path>: <message>`` where the path uses the wire names
(camelCase, list indexes in brackets), e.g. ``spec.stages[1].budget: exactly one of
tokens, samples and steps must be set``. :class:`SpecError` is the only exception type
this module raises for bad input, so callers (the operator's status, the CLI's exit code
2) handle one thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .constants import API_VERSION
from .kinds import KINDS


class SpecError(ValueError):
    """A spec that can never work. ``problems`` holds one ``path: message`` per error."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def format_loc(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part in ("literal", "tagged-union"):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _problems(err: ValidationError, prefix: str) -> list[str]:
    out = []
    for e in err.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(f"{format_loc(prefix, e['loc'])}: {msg}")
    return out


def parse_spec(
    kind: str, spec: Any, prefix: str = "spec", name: str | None = None, checks: bool = True
) -> BaseModel:
    """Validate ``spec`` as ``kind``'s spec; raise :class:`SpecError` on any problem.

    Three layers, all before any child exists: the model (types, ranges, cross-field
    rules), then the semantic checks (:mod:`sailvl.api.checks`: the stage plan the
    trainer would refuse, accelerators, every value passed on to Jobs and pods; for a
    Curriculum every child spec as it will be built, :mod:`sailvl.api.curriculum_checks`;
    for an Experiment every trial's children, :mod:`sailvl.experiment.checks`), then, with ``name`` (``metadata.name``), the names of the generated children.
    ``checks=False`` stops after the model: a job pod re-reading its job config runs
    the plan itself at the world size it finds (``sailvl.train.preflight``).
    """
    if kind not in KINDS:
        raise SpecError([f"kind: unknown kind {kind!r} (known: {sorted(KINDS)})"])
    if not isinstance(spec, Mapping):
        raise SpecError([f"{prefix}: must be a mapping, got {type(spec).__name__}"])
    try:
        model = KINDS[kind].spec.model_validate(dict(spec))
    except ValidationError as err:
        raise SpecError(_problems(err, prefix)) from None
    if not checks:
        return model
    if kind == "Curriculum":
        from .compose import check_curriculum
        from .curriculum_checks import curriculum_problems

        check_curriculum(model, prefix)  # type: ignore[arg-type]
        problems = curriculum_problems(model, prefix, name)  # type: ignore[arg-type]
    elif kind == "Experiment":
        from sailvl.experiment.checks import experiment_problems

        problems = experiment_problems(model, prefix, name)  # type: ignore[arg-type]
    else:
        from .checks import spec_problems

        problems = spec_problems(kind, model, prefix, name)
    if problems:
        raise SpecError(problems)
    return model


# Reason of the warning events the operator posts for :func:`spec_warnings`.
REASON_SUSPICIOUS_SPEC = "SuspiciousSpec"


def spec_warnings(kind: str, spec: BaseModel, prefix: str = "spec") -> list[str]:
    """Valid but suspicious (``path: message`` lines): gate thresholds <= 1 on a 0-100
    scale; an Experiment whose method cannot check itself (a single quickQuality subset
    size). ``sailvl validate`` prints them (exit 0); the operator posts warning events."""
    if kind == "Experiment":
        from sailvl.experiment.checks import experiment_warnings

        return experiment_warnings(spec, prefix)  # type: ignore[arg-type]
    if kind != "Curriculum":
        return []
    from .curriculum_checks import curriculum_warnings

    return curriculum_warnings(spec, prefix)  # type: ignore[arg-type]


def parse_resource(obj: Any, checks: bool = True) -> tuple[str, str, BaseModel]:
    """Validate a whole object (apiVersion, kind, metadata, spec): (kind, name, spec)."""
    if not isinstance(obj, Mapping):
        raise SpecError([f"resource: must be a mapping, got {type(obj).__name__}"])
    problems = []
    if obj.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION}, got {obj.get('apiVersion')!r}")
    kind = obj.get("kind")
    if kind not in KINDS:
        problems.append(f"kind: unknown kind {kind!r} (known: {sorted(KINDS)})")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        problems.append("metadata.name: required")
    if "spec" not in obj:
        problems.append("spec: required")
    if problems:
        raise SpecError(problems)
    spec = parse_spec(str(kind), obj["spec"], name=str(name), checks=checks)
    return str(kind), str(name), spec
