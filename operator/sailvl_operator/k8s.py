"""The only module that talks to the API server (the ``kubernetes`` client, sync).

Every call is idempotent from the caller's point of view: ``create`` treats 409
Conflict as "already there" and returns the existing object; ``delete`` treats 404 as
done; ``patch_status`` is a JSON merge patch of the status subresource.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from sailvl.api.constants import GROUP, PODGROUP_API, VERSION
from sailvl.api.kinds import KINDS

log = logging.getLogger(__name__)
#: Handler threads (kopf's ``settings.execution.max_workers``) and HTTP connections.
WORKERS = int(os.environ.get("SAILVL_OPERATOR_WORKERS", "32"))
#: Threads of the children's background observes (main.OBSERVER), connections too.
BACKGROUND_WORKERS = max(4, WORKERS // 2)


@functools.cache
def _api() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        # The client library reads KUBECONFIG when it is imported; read it now instead.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = WORKERS + BACKGROUND_WORKERS  # one per thread
    return client.ApiClient(cfg)


def _raw(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The JSON body of a read, without the client's model objects: for a list of Jobs
    or pods, building the models and turning them back into dicts cost several times
    the request itself in the operator's CPU (kopf's event loop shares that CPU, so the
    watches lagged). Times stay as the server wrote them (RFC 3339, ``...Z``)."""
    return json.loads(call(*args, _preload_content=False, **kwargs).data)


def reset() -> None:
    """Forget the cached client (tests point the operator at a new cluster)."""
    _api.cache_clear()


def _dyn(api_version: str, kind: str) -> tuple[str, str, str]:
    """(group, version, plural) of a kind we create."""
    if api_version == f"{GROUP}/{VERSION}":
        return GROUP, VERSION, KINDS[kind].plural
    if kind == "PodGroup" and api_version in PODGROUP_API.values():  # gangs (gang.py)
        group, version = api_version.split("/")
        return group, version, "podgroups"
    raise ValueError(f"not a custom kind: {api_version} {kind}")


def create(obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj``; on 409 return the object that is already there."""
    kind, ns = obj["kind"], obj["metadata"]["namespace"]
    try:
        return _create(obj, kind, ns)
    except ApiException as err:
        if err.status == 409:
            existing = get(obj["apiVersion"], kind, ns, obj["metadata"]["name"])
            if existing is not None:
                return existing
        raise


def _create(obj: dict[str, Any], kind: str, ns: str) -> dict[str, Any]:
    api = _api()
    core, batch, rbac = (
        client.CoreV1Api(api),
        client.BatchV1Api(api),
        client.RbacAuthorizationV1Api(api),
    )
    if kind == "ConfigMap":
        return api.sanitize_for_serialization(core.create_namespaced_config_map(ns, obj))
    if kind == "Service":
        return api.sanitize_for_serialization(core.create_namespaced_service(ns, obj))
    if kind == "ServiceAccount":
        return api.sanitize_for_serialization(core.create_namespaced_service_account(ns, obj))
    if kind == "Job":
        return api.sanitize_for_serialization(batch.create_namespaced_job(ns, obj))
    if kind == "Role":
        return api.sanitize_for_serialization(rbac.create_namespaced_role(ns, obj))
    if kind == "RoleBinding":
        return api.sanitize_for_serialization(rbac.create_namespaced_role_binding(ns, obj))
    group, version, plural = _dyn(obj["apiVersion"], kind)
    return client.CustomObjectsApi(api).create_namespaced_custom_object(
        group, version, ns, plural, obj
    )  # type: ignore[no-any-return]


def get(api_version: str, kind: str, ns: str, name: str) -> dict[str, Any] | None:
    api = _api()
    try:
        if kind == "Job":
            return _raw(client.BatchV1Api(api).read_namespaced_job, name, ns)  # type: ignore[no-any-return]
        if kind == "ConfigMap":
            return api.sanitize_for_serialization(
                client.CoreV1Api(api).read_namespaced_config_map(name, ns)
            )  # type: ignore[no-any-return]
        if kind == "Service":
            return api.sanitize_for_serialization(
                client.CoreV1Api(api).read_namespaced_service(name, ns)
            )  # type: ignore[no-any-return]
        if kind in ("ServiceAccount", "Role", "RoleBinding"):
            return {"kind": kind, "metadata": {"name": name, "namespace": ns}}
        group, version, plural = _dyn(api_version, kind)
        return client.CustomObjectsApi(api).get_namespaced_custom_object(
            group, version, ns, plural, name
        )  # type: ignore[no-any-return]
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def list_custom(kind: str, ns: str, selector: str) -> list[dict[str, Any]]:
    api = _api()
    plural = KINDS[kind].plural
    out = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, ns, plural, label_selector=selector
    )
    return list(out.get("items", []))


def list_jobs(ns: str, selector: str) -> list[dict[str, Any]]:
    out = _raw(client.BatchV1Api(_api()).list_namespaced_job, ns, label_selector=selector)
    return list(out.get("items") or [])


def list_pods(ns: str, selector: str) -> list[dict[str, Any]]:
    out = _raw(client.CoreV1Api(_api()).list_namespaced_pod, ns, label_selector=selector)
    return list(out.get("items") or [])


def secret_exists(ns: str, name: str) -> bool | None:
    """Whether a Secret exists; None when the operator may not read Secrets (its RBAC
    grants ``get`` only; without it the check is skipped, never guessed)."""
    try:
        client.CoreV1Api(_api()).read_namespaced_secret(name, ns)
        return True
    except ApiException as err:
        if err.status == 404:
            return False
        if err.status == 403:
            return None
        raise


def patch_job(ns: str, name: str, patch: dict[str, Any]) -> None:
    client.BatchV1Api(_api()).patch_namespaced_job(name, ns, patch)


def read_lease(ns: str, name: str) -> dict[str, Any] | None:
    """The leader-election Lease (leader.py), or None."""
    api = _api()
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(name, ns)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return api.sanitize_for_serialization(lease)  # type: ignore[no-any-return]


def write_lease(ns: str, name: str, spec: dict[str, Any], resource_version: str | None) -> None:
    """Create the Lease (``resource_version`` None) or replace it at that version, so a
    concurrent writer gets 409 Conflict instead of both believing they lead."""
    coord = client.CoordinationV1Api(_api())
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": ns}, "spec": spec}
    if resource_version is None:
        coord.create_namespaced_lease(ns, body)
    else:
        body["metadata"]["resourceVersion"] = resource_version
        coord.replace_namespaced_lease(name, ns, body)


def delete_custom(api_version: str, kind: str, ns: str, name: str) -> None:
    """Delete a custom object (a gang's PodGroup); 404 is done."""
    group, version, plural = _dyn(api_version, kind)
    try:
        client.CustomObjectsApi(_api()).delete_namespaced_custom_object(
            group, version, ns, plural, name
        )
    except ApiException as err:
        if err.status != 404:
            raise


def delete_job(ns: str, name: str) -> None:
    """Delete a Job and (in the background) its pods."""
    try:
        client.BatchV1Api(_api()).delete_namespaced_job(name, ns, propagation_policy="Background")
    except ApiException as err:
        if err.status != 404:
            raise


def patch_status(kind: str, ns: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch ``status`` into the resource's status subresource (a dict body is
    sent as ``application/merge-patch+json``)."""
    api = client.CustomObjectsApi(_api())
    return api.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
        GROUP, VERSION, ns, KINDS[kind].plural, name, {"status": status}
    )


def list_workloads(ns: str, selector: str) -> list[dict[str, Any]]:
    """Kueue Workloads (kueue.x-k8s.io/v1beta2) matching ``selector``; [] when Kueue's
    CRDs are not installed."""
    try:
        out: Any = client.CustomObjectsApi(_api()).list_namespaced_custom_object(
            "kueue.x-k8s.io", "v1beta2", ns, "workloads", label_selector=selector
        )
    except ApiException as err:
        if err.status == 404:
            return []
        raise
    return list(out.get("items", []))


def patch_workload(ns: str, name: str, patch: dict[str, Any]) -> None:
    """Merge-patch a Kueue Workload (the operator only sets ``spec.active``)."""
    client.CustomObjectsApi(_api()).patch_namespaced_custom_object(
        "kueue.x-k8s.io", "v1beta2", ns, "workloads", name, patch
    )
