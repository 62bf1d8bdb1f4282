"""Pod-spec rules of the API server for what a pod overlay (``template``) passes on:
tolerations, env entries, volumes and mounts, affinity (core/v1 ``validateTolerations``,
``validateEnv``, ``validateVolumes`` / ``validateVolumeMounts``, ``validateAffinity``).
Like :mod:`sailvl.api.kube`, each function returns ``(path, message)`` pairs with the
path relative to the value passed in; ``tests/cluster/test_api_plan_server.py`` checks
them against a real kube-apiserver (server-side dry run of the Job built from them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .kube import ENV_NAME, Problem, dns_label, label_value, qualified_name

TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")


def toleration(t: Any) -> list[Problem]:
    """One toleration as core/v1 ``validateTolerations`` checks it."""
    if not isinstance(t, Mapping):
        return [("", "must be a mapping")]
    out: list[Problem] = [(f".{k}", "unknown field") for k in t if k not in TOLERATION_KEYS]
    key, op = t.get("key") or "", t.get("operator") or "Equal"
    value, effect = t.get("value") or "", t.get("effect") or ""
    if not all(isinstance(v, str) for v in (key, op, value, effect)):
        return [*out, ("", "key, operator, value and effect must be strings")]
    if key and (why := qualified_name(key)):
        out.append((".key", why))
    if not key and op != "Exists":
        out.append((".operator", "must be Exists when key is empty (tolerate every taint)"))
    if op == "Exists" and value:
        out.append((".value", "must be empty when operator is Exists"))
    elif op == "Equal" and (why := label_value(value)):
        out.append((".value", why))
    elif op not in ("Equal", "Exists"):
        out.append((".operator", f"{op!r} is not supported: Equal or Exists"))
    if effect not in EFFECTS:
        out.append((".effect", f"{effect!r} is not supported: {', '.join(EFFECTS[1:])}"))
    if "tolerationSeconds" in t:
        if not isinstance(t["tolerationSeconds"], int) or isinstance(t["tolerationSeconds"], bool):
            out.append((".tolerationSeconds", "must be an integer (seconds)"))
        if effect != "NoExecute":
            out.append((".effect", "must be NoExecute when tolerationSeconds is set"))
    return out


# The downward API fields an env var may read (core/v1 validateEnvVarValueFrom).
FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
    "status.podIPs",
)  # fmt: skip
FIELD_MAP = re.compile(r"^metadata\.(labels|annotations)\['[^']+'\]$")
FIELD_HELP = f"{', '.join(FIELD_PATHS)}, metadata.labels['<key>'], metadata.annotations['<key>']"
RESOURCE_FIELD = re.compile(r"^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-.+)$")
ENV_KEYS = ("name", "value", "valueFrom")
ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


def env_var(e: Any, reserved: tuple[str, ...] = ()) -> list[Problem]:
    """One env entry as core/v1 ``validateEnv`` checks it."""
    if not isinstance(e, Mapping):
        return [("", "must be a mapping with name and value or valueFrom")]
    out: list[Problem] = [(f".{k}", "unknown field") for k in e if k not in ENV_KEYS]
    name = e.get("name")
    if not isinstance(name, str) or not name:
        out.append((".name", "required"))
    elif not ENV_NAME.match(name):
        out.append(
            (
                ".name",
                f"{name!r} must consist of letters, digits, '_', '-', '.', not start with a digit",
            )
        )
    elif name in reserved:
        out.append((".name", f"{name!r} is set by the operator (the pod contract)"))
    if "value" in e and not isinstance(e["value"], str):
        out.append((".value", "must be a string (quote numbers)"))
    src = e.get("valueFrom")
    if src is not None:
        if e.get("value"):
            out.append((".valueFrom", "may not be set when value is not empty"))
        kinds = [k for k in src if k in ENV_SOURCES] if isinstance(src, Mapping) else []
        if len(kinds) != 1 or len(kinds) != len(src):
            out.append((".valueFrom", f"must set exactly one of {', '.join(ENV_SOURCES)}"))
        elif kinds[0] in ("configMapKeyRef", "secretKeyRef"):
            ref = src[kinds[0]]
            for f in ("name", "key"):
                if not isinstance(ref, Mapping) or not ref.get(f):
                    out.append((f".valueFrom.{kinds[0]}.{f}", "required"))
        elif kinds[0] == "fieldRef":
            path = (
                src["fieldRef"].get("fieldPath") if isinstance(src["fieldRef"], Mapping) else None
            )
            if not isinstance(path, str) or not (path in FIELD_PATHS or FIELD_MAP.match(path)):
                out.append(
                    (".valueFrom.fieldRef.fieldPath", f"{path!r} is not supported: {FIELD_HELP}")
                )
        else:
            res = src["resourceFieldRef"]
            name = res.get("resource") if isinstance(res, Mapping) else None
            if not isinstance(name, str) or not RESOURCE_FIELD.match(name):
                out.append(
                    (".valueFrom.resourceFieldRef.resource", f"{name!r} is not supported: "
                     "limits.* or requests.* of cpu, memory, ephemeral-storage, hugepages-*")
                )  # fmt: skip
    return out


def volumes(vols: list[Any], mounts: list[Any], taken: Mapping[str, str]) -> list[Problem]:
    """User volumes and mounts next to the operator's (``taken``: volume name -> path)."""
    out: list[Problem] = []
    names = set(taken)
    for i, v in enumerate(vols):
        name = v.get("name") if isinstance(v, Mapping) else None
        where = f"volumes[{i}]"
        if not isinstance(name, str) or not name:
            out.append((f"{where}.name", "required"))
            continue
        if why := dns_label(name):
            out.append((f"{where}.name", why))
        elif name in names:
            out.append((f"{where}.name", f"{name!r} is used twice (or by the operator)"))
        if len(v) != 2:
            out.append((where, "must set exactly one volume source besides name"))
        names.add(name)
    paths = set(taken.values())
    for i, m in enumerate(mounts):
        where = f"volumeMounts[{i}]"
        if not isinstance(m, Mapping):
            out.append((where, "must be a mapping"))
            continue
        if m.get("name") not in names:
            out.append((f"{where}.name", f"{m.get('name')!r} is not a volume of the pod"))
        path = m.get("mountPath")
        if not isinstance(path, str) or not path:
            out.append((f"{where}.mountPath", "required"))
        elif path.rstrip("/") in paths:
            out.append((f"{where}.mountPath", f"{path!r} is already mounted"))
        else:
            paths.add(path.rstrip("/"))
        sub = m.get("subPath") or ""
        if sub.startswith("/") or ".." in sub.split("/"):
            out.append((f"{where}.subPath", "must be a relative path without '..'"))
    return out


NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _requirement(r: Any, ops: tuple[str, ...]) -> list[Problem]:
    """One ``matchExpressions`` entry: key, operator, values as the operator wants them."""
    if not isinstance(r, Mapping):
        return [("", "must be a mapping with key, operator and values")]
    out: list[Problem] = []
    key, op, values = r.get("key"), r.get("operator"), r.get("values") or []
    if not isinstance(key, str) or (why := qualified_name(key)) is not None:
        out.append((".key", why if isinstance(key, str) and why else "required"))
    if op not in ops:
        out.append((".operator", f"{op!r} is not supported: {', '.join(ops)}"))
    elif op in ("In", "NotIn") and not values:
        out.append((".values", f"must be non-empty for operator {op}"))
    elif op in ("Exists", "DoesNotExist") and values:
        out.append((".values", f"must be empty for operator {op}"))
    elif op in ("Gt", "Lt") and (len(values) != 1 or not str(values[0]).lstrip("-").isdigit()):
        out.append((".values", f"operator {op} takes exactly one integer value"))
    return out


def _terms(terms: Any, where: str, ops: tuple[str, ...]) -> list[Problem]:
    out: list[Problem] = []
    for i, term in enumerate(terms if isinstance(terms, list) else []):
        exprs = term.get("matchExpressions") if isinstance(term, Mapping) else None
        for j, r in enumerate(exprs if isinstance(exprs, list) else []):
            out += [(f"{where}[{i}].matchExpressions[{j}]{p}", m) for p, m in _requirement(r, ops)]
    return out


def affinity(a: Mapping[str, Any]) -> list[Problem]:
    """Node and pod (anti-)affinity: the selector operators and keys the server checks,
    and a ``topologyKey`` on every pod affinity term."""
    out: list[Problem] = [
        (f".{k}", "unknown field")
        for k in a
        if k not in ("nodeAffinity", "podAffinity", "podAntiAffinity")
    ]
    node = a.get("nodeAffinity") or {}
    req = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    path = ".nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    if req and not req.get("nodeSelectorTerms"):
        out.append((path, "must have at least one term"))
    out += _terms(req.get("nodeSelectorTerms"), path, NODE_OPERATORS)
    for i, pref in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        where = f".nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        weight = pref.get("weight") if isinstance(pref, Mapping) else None
        if not isinstance(weight, int) or not 1 <= weight <= 100:
            out.append((f"{where}.weight", "must be an integer in 1..100"))
        term = pref.get("preference") if isinstance(pref, Mapping) else None
        out += [
            (f"{where}.preference{p[3:]}", m) for p, m in _terms([term or {}], "", NODE_OPERATORS)
        ]
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = a.get(kind) or {}
        for i, t in enumerate(pod.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            where = f".{kind}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            if not isinstance(t, Mapping) or not t.get("topologyKey"):
                out.append((f"{where}.topologyKey", "required"))
            sel = t.get("labelSelector") if isinstance(t, Mapping) else None
            if isinstance(sel, Mapping):
                out += [
                    (f"{where}.labelSelector{p[3:]}", m)
                    for p, m in _terms([sel], "", LABEL_OPERATORS)
                ]
    return out
