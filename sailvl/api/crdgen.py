"""Generate CustomResourceDefinitions from the models.

The pydantic JSON schema is turned into a Kubernetes *structural* schema: ``$ref`` is
inlined, ``anyOf [X, null]`` becomes X (an omitted field), draft-2020 exclusive bounds
become ``minimum`` + ``exclusiveMinimum: true``, ``Literal`` becomes ``enum``, free-form
objects get ``x-kubernetes-preserve-unknown-fields``. Scalar defaults are kept so the API
server defaults them; fields whose default is "take it from the preset" have none. CEL
rules from :data:`sailvl.api.kinds.KINDS` are attached to the spec. The status keeps
unknown fields (kopf stores its progress there).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .constants import CATEGORY, GROUP, VERSION
from .kinds import KINDS, KindInfo

_KEEP = {
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "default",
    "x-kubernetes-validations",
}


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**target, **extra}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            merged = {**{k: v for k, v in node.items() if k != "anyOf"}, **options[0]}
            if merged.get("default", 0) is None:
                merged.pop("default")
            return _structural(merged, defs)
        return {"x-kubernetes-int-or-string": True}
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    if out.get("default") is None:
        out.pop("default", None)
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", _json_type(node["const"]))
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    if "exclusiveMinimum" in node:
        out["minimum"] = node["exclusiveMinimum"]
        if out["type"] == "integer":
            out["minimum"] = node["exclusiveMinimum"] + 1
        else:
            out["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        out["maximum"] = node["exclusiveMaximum"]
        out["exclusiveMaximum"] = True
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties")
        if props:
            out["properties"] = {k: _structural(v, defs) for k, v in props.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
            if isinstance(out.get("default"), dict) and not out["default"]:
                out.pop("default")
        elif isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]:
            out["additionalProperties"] = _structural(node["additionalProperties"], defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
        out.pop("default", None)
    elif kind == "array":
        out["items"] = _structural(node.get("items", {}), defs)
        out.pop("default", None)
    elif kind is None and not out.get("enum"):
        out["x-kubernetes-preserve-unknown-fields"] = True
        out["type"] = "object"
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def crd(info: KindInfo) -> dict[str, Any]:
    spec = schema_of(info.spec)
    spec.pop("description", None)
    if info.spec_rules:
        spec["x-kubernetes-validations"] = [
            {"rule": rule, "message": msg} for rule, msg in info.spec_rules
        ]
    status = schema_of(info.status)
    status.pop("description", None)
    status["x-kubernetes-preserve-unknown-fields"] = True
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "jsonPath": c.json_path,
                            **({"priority": c.priority} if c.priority else {}),
                        }
                        for c in info.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(info: KindInfo) -> str:
    header = "# Generated by `sailvl crds` from sailvl/api. Do not edit by hand.\n"
    return header + yaml.safe_dump(crd(info), sort_keys=False, width=100)


def write_all(*targets: Path) -> list[Path]:
    """Write ``<kind>.yaml`` for every kind into each target folder; return the paths."""
    written = []
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
        for info in KINDS.values():
            path = folder / f"{info.singular}.yaml"
            path.write_text(render(info))
            written.append(path)
    return written
