"""Kubernetes value rules, checked before the operator builds a child from them.

A spec passes through to Jobs, pods and Services: names, labels, resource quantities
(this module), tolerations, env entries, volumes and affinity (:mod:`sailvl.api.podspec`). If one of them breaks a rule of the API
server, the child's create call fails (422) long after the resource was admitted. These
functions apply the same rules up front (apimachinery's ``validation.IsDNS1123Label``,
``IsQualifiedName``, ``IsValidLabelValue``, ``resource.ParseQuantity``; core/v1's
``validateTolerations``, ``validateEnv``, ``ValidateResourceRequirements``) so that the
resource gets ``InvalidSpec`` naming the field instead. Each returns a list of
``(path, message)`` with the path relative to the object passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from . import childnames

Problem = tuple[str, str]

DNS1123_LABEL = re.compile(childnames.DNS1123_LABEL)
DNS1035_LABEL = re.compile(childnames.DNS1035_LABEL)  # a letter first (Service names)
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The env name rule every supported server applies (1.30-1.33 without the relaxed
# names gate; 1.34+ accepts more, never less).
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# resource.Quantity: <signed number><suffix>, suffix binary SI, decimal SI or exponent.
QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suf>[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "m": Fraction(1, 1000),
    **{s: Fraction(10) ** (3 * (i + 1)) for i, s in enumerate("kMGTPE")},
}
MAX_LABEL = childnames.MAX_LABEL
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def parse_quantity(value: str | int) -> Fraction:
    """The value of a Kubernetes quantity ("500m", "1.5Gi", "2e3", 4); ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    m = QUANTITY.match(value.strip()) if value == value.strip() else None
    if m is None:
        raise ValueError(
            f"{value!r} is not a quantity (a number with an optional suffix: m, k, M, G, T, "
            "P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>; e.g. 500m, 16Gi, 4)"
        )
    num, suf = Fraction(m["num"]), m["suf"] or ""
    if suf[:1] in ("e", "E") and len(suf) > 1:
        return num * Fraction(10) ** int(suf[1:])
    return num * (Fraction(_BINARY[suf]) if suf in _BINARY else _DECIMAL.get(suf, Fraction(1)))


def dns_label(value: str, what: str = "name", rule: re.Pattern[str] = DNS1123_LABEL) -> str | None:
    """Why ``value`` is not a DNS label (RFC 1123, or 1035 with ``DNS1035_LABEL``)."""
    if len(value) > MAX_LABEL:
        return f"{what} {value!r} is {len(value)} characters; at most {MAX_LABEL} allowed"
    if not rule.match(value):
        first = "a letter" if rule is DNS1035_LABEL else "a letter or digit"
        return (
            f"{what} {value!r} must be a DNS label: lower-case letters, digits and '-', "
            f"starting with {first} and ending with a letter or digit"
        )
    return None


def subdomain(value: str, what: str = "name") -> str | None:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        return f"{what} {value!r} must be a DNS subdomain (lower-case, '-', '.', <= 253)"
    return None


def qualified_name(key: str, what: str = "key") -> str | None:
    """Why ``key`` is not a label / annotation key: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or subdomain(prefix) is not None):
        return f"{what} {key!r}: the prefix before '/' must be a DNS subdomain"
    if len(name) > MAX_LABEL or not QUALIFIED_NAME.match(name):
        return (
            f"{what} {key!r}: the name part must be 1-63 characters of letters, digits, "
            "'-', '_', '.', starting and ending with a letter or digit"
        )
    return None


def label_value(value: Any, what: str = "value") -> str | None:
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__}"
    if len(value) > MAX_LABEL or not LABEL_VALUE.match(value):
        return (
            f"{what} {value!r} must be at most 63 characters of letters, digits, '-', '_', "
            "'.', starting and ending with a letter or digit (or empty)"
        )
    return None


def label_map(values: Mapping[str, Any], *, reserved: tuple[str, ...] = ()) -> list[Problem]:
    out = []
    for key, value in values.items():
        why = qualified_name(key) or label_value(value)
        if why is None and key.startswith(reserved):
            why = f"key {key!r}: the prefixes {list(reserved)} are set by the operator"
        if why:
            out.append((f"[{key}]", why))
    return out


def annotation_map(values: Mapping[str, Any]) -> list[Problem]:
    out = [(f"[{k}]", why) for k in values if (why := qualified_name(k))]
    out += [
        (f"[{k}]", "value must be a string") for k, v in values.items() if not isinstance(v, str)
    ]
    if sum(len(k) + len(str(v)) for k, v in values.items()) > 256 * 1024:
        out.append(("", "annotations may hold at most 256 KiB in total"))
    return out


def resources(requests: Mapping[str, Any], limits: Mapping[str, Any]) -> list[Problem]:
    """Container resources as ``ValidateResourceRequirements`` checks them."""
    out: list[Problem] = []
    parsed: dict[str, dict[str, Fraction]] = {"requests": {}, "limits": {}}
    for part, values in (("requests", requests), ("limits", limits)):
        for name, raw in values.items():
            where = f"{part}[{name}]"
            why = _resource_name(name)
            if why:
                out.append((where, why))
                continue
            try:
                q = parse_quantity(raw)
            except ValueError as err:
                out.append((where, str(err)))
                continue
            if q < 0:
                out.append((where, f"{raw!r} must be greater than or equal to 0"))
            elif "/" in name and q.denominator != 1:
                out.append((where, f"{raw!r}: extended resource {name} must be a whole number"))
            else:
                parsed[part][name] = q
    names = set(requests) | set(limits)
    if any(n.startswith("hugepages-") for n in names) and not names & {"cpu", "memory"}:
        out.append(("", "hugepages need a cpu or memory request or limit as well"))
    for name, req in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        extended = "/" in name or name.startswith("hugepages-")
        if lim is None and extended and name not in limits:
            out.append((f"limits[{name}]", f"must be set: {name} cannot be overcommitted"))
        elif lim is not None and extended and req != lim:
            out.append(
                (f"requests[{name}]", f"must equal limits[{name}] ({name} cannot be overcommitted)")
            )
        elif lim is not None and req > lim:
            out.append(
                (f"requests[{name}]", f"{requests[name]} is above limits[{name}] {limits[name]}")
            )
    return out


def _resource_name(name: str) -> str | None:
    if "/" not in name:
        if name in STANDARD_RESOURCES:
            return None
        if name.startswith("hugepages-") and QUANTITY.match(name.removeprefix("hugepages-")):
            return None
        return (
            f"resource {name!r} is neither a standard resource ({', '.join(STANDARD_RESOURCES)}, "
            "hugepages-<size>) nor a fully qualified extended resource (domain/name)"
        )
    prefix = name.split("/", 1)[0]
    if qualified_name(name) or "." not in prefix:
        return f"resource {name!r} must be a fully qualified name (domain/name)"
    return None
