"""Load a Curriculum or Experiment file for a local run: placeholders, storage, errors
with line numbers.

``${RUN}`` in the file is replaced by the run's storage URI before validation, so an
example can place its data next to its outputs (``${RUN}/data/ocr``). Errors name the
field and, where the YAML node can be found, its line: ``line 12: spec.stages[1]...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from sailvl.api import SpecError, parse_resource
from sailvl.api.curriculum import CurriculumSpec
from sailvl.api.experiment import ExperimentSpec

PLACEHOLDER = "${RUN}"
RUNNABLE = ("Curriculum", "Experiment")


def default_storage(runs: Path, name: str) -> str:
    return f"file://{(runs / name).resolve()}"


def _node_at(node: Any, path: str) -> Any:
    """The YAML node of a ``spec.stages[1].budget`` path (as far as it resolves)."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
            i = int(part[1:-1])
            nxt = node.value[i] if i < len(node.value) else None
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
    return node


def with_lines(text: str, err: SpecError) -> list[str]:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return err.problems
    out = []
    for problem in err.problems:
        path = problem.split(":", 1)[0]
        node = _node_at(root, path) if root is not None else None
        out.append(f"line {node.start_mark.line + 1}: {problem}" if node is not None else problem)
    return out


def load(
    file: Path, runs: Path, storage: str | None
) -> tuple[str, CurriculumSpec | ExperimentSpec, dict[str, Any]]:
    """(name, spec, raw object) of a Curriculum or Experiment file; :class:`SpecError`
    with lines."""
    try:
        text = file.read_text()
        raw = yaml.safe_load(text)
    except OSError as err:
        raise SpecError([f"{file}: cannot read: {err}"]) from None
    except yaml.YAMLError as err:
        raise SpecError([f"{file}: not valid YAML: {err}"]) from None
    if not isinstance(raw, dict):
        raise SpecError([f"{file}: expected one Curriculum or Experiment object"])
    name = str((raw.get("metadata") or {}).get("name") or "run")
    uri = storage or default_storage(runs, name)
    text = text.replace(PLACEHOLDER, uri.rstrip("/"))
    obj = yaml.safe_load(text)
    if isinstance(obj.get("spec"), dict) and isinstance(obj["spec"].get("storage"), dict):
        obj["spec"]["storage"]["uri"] = uri
    if obj.get("kind") not in RUNNABLE:
        raise SpecError(
            [f"kind: sailvl run takes a Curriculum or an Experiment, got {obj.get('kind')!r}"]
        )
    try:
        _, name, spec = parse_resource(obj)
    except SpecError as err:
        raise SpecError(with_lines(text, err)) from None
    assert isinstance(spec, CurriculumSpec | ExperimentSpec)
    return name, spec, obj
