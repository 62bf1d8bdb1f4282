"""Generate CustomResourceDefinitions from the models.

The pydantic JSON schema is turned into a Kubernetes *structural* schema: ``$ref`` is
inlined, ``anyOf [X, null]`` becomes X (an omitted field), draft-2020 exclusive bounds
become ``minimum`` + ``exclusiveMinimum: true``, ``Literal`` becomes ``enum``, free-form
objects get ``x-kubernetes-preserve-unknown-fields``. Scalar defaults are kept so the API
server defaults them; fields whose default is "take it from the preset" have none. CEL
rules from :data:`sailvl.api.kinds.KINDS` are attached where they belong: whole-spec
rules to the spec, immutability as ``self == oldSelf`` on the immutable field itself,
name-length rules at the root (the only place ``metadata.name`` is readable). The status
keeps unknown fields (kopf stores its progress there); its ``conditions`` are replaced
by the upstream metav1.Condition schema, so the API server refuses a condition
``kubectl`` or a controller library could not read. Descriptions come from the models'
field docstrings; a unit test fails on any field without one.
"""

from __future__ import annotations

import copy
import sys
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
    "format",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}

# metav1.Condition (k8s.io/apimachinery/pkg/apis/meta/v1), as controller-gen renders it
# for a `[]metav1.Condition` field with +listType=map +listMapKey=type.
_CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "The resource's conditions (metav1.Condition), at most one per type: "
    "Ready, Running, Succeeded, Failed, Suspended, Restarting, GatePassed. The phase sums "
    "them up; each condition's reason and message say why.",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    "items": {
        "type": "object",
        "description": "One aspect of the resource's state.",
        "required": ["type", "status", "reason", "message", "lastTransitionTime"],
        "properties": {
            "type": {
                "type": "string",
                "description": "Condition type, CamelCase (e.g. Ready, Failed); the list key.",
                "maxLength": 316,
                "pattern": _CONDITION_TYPE,
            },
            "status": {
                "type": "string",
                "description": "True, False or Unknown.",
                "enum": ["True", "False", "Unknown"],
            },
            "reason": {
                "type": "string",
                "description": "Why the condition last changed, a CamelCase word for programs "
                "(e.g. InvalidSpec, MaxRestartsExceeded); never empty.",
                "minLength": 1,
                "maxLength": 1024,
                "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            },
            "message": {
                "type": "string",
                "description": "Details for people; may be empty.",
                "maxLength": 32768,
            },
            "lastTransitionTime": {
                "type": "string",
                "format": "date-time",
                "description": "When status last changed (RFC 3339); a new reason or "
                "message alone keeps it.",
            },
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "minimum": 0,
                "description": "metadata.generation of the spec the condition was set for.",
            },
        },
    },
}

_ROOT_DESCRIPTIONS = {
    "apiVersion": "Versioned schema of this object: sailvl.io/v1alpha1.",
    "kind": "REST resource this object represents (the kind, in CamelCase).",
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


def _field(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.split("."):
        node = node["properties"][part]
    return node


def spec_schema(info: KindInfo) -> dict[str, Any]:
    """The spec's schema with the kind's CEL rules and object defaults in place."""
    spec = schema_of(info.spec)
    spec["description"] = f"Desired state of the {info.kind}."
    if info.spec_rules:
        spec["x-kubernetes-validations"] = [
            {"rule": rule, "message": msg} for rule, msg in info.spec_rules
        ]
    for path in info.defaulted_objects:
        _field(spec, path)["default"] = {}
    for path in info.immutable:
        rules = _field(spec, path).setdefault("x-kubernetes-validations", [])
        rules.append({"rule": "self == oldSelf", "message": f"{path} is immutable"})
    return spec


def status_schema(info: KindInfo) -> dict[str, Any]:
    status = schema_of(info.status)
    status["description"] = (
        f"Observed state of the {info.kind}: the operator writes phase, conditions, "
        "restarts and times; job pods merge-patch their progress fields."
    )
    status["x-kubernetes-preserve-unknown-fields"] = True
    status["properties"]["conditions"] = copy.deepcopy(CONDITIONS_SCHEMA)
    return status


def crd(info: KindInfo) -> dict[str, Any]:
    spec = spec_schema(info)
    status = status_schema(info)
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
                            **({"description": c.description} if c.description else {}),
                        }
                        for c in info.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": _kind_description(info),
                            "required": ["spec"],
                            "properties": {
                                **{
                                    key: {"type": "string", "description": text}
                                    for key, text in _ROOT_DESCRIPTIONS.items()
                                },
                                # The API server refuses anything but type here: metadata
                                # is ObjectMeta, which kubectl explain documents itself.
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                            **(
                                {"x-kubernetes-validations": list(info.root_rules)}
                                if info.root_rules
                                else {}
                            ),
                        }
                    },
                }
            ],
        },
    }


def _kind_description(info: KindInfo) -> str:
    """The first paragraph of the kind's module docstring (e.g. sailvl/api/train.py)."""
    doc = (sys.modules[info.spec.__module__].__doc__ or info.kind).strip().split("\n\n")[0]
    return " ".join(doc.split())


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
