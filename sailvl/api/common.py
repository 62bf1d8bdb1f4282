"""Building blocks shared by the four resources: the base model, URIs, pod overlays and
the common status.

Every model is a pydantic model with camelCase aliases (the Kubernetes convention) and
``extra="forbid"`` so that a misspelt field is an error naming it, not a silent no-op.
Cross-field rules live in ``model_validator`` methods and raise ``ValueError``; the
:mod:`sailvl.api.validation` module turns those into messages that name the field path.
Field metadata that the CRD schema can express (enums, minimums, patterns, CEL rules) is
written once here and read by :mod:`sailvl.api.crdgen`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .constants import Phase

URI_PATTERN = r"^(file|s3|hdfs)://[^\s]+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Uri = Annotated[
    str,
    Field(
        pattern=URI_PATTERN,
        max_length=2048,
        description="Object-store URI: file://, s3:// or hdfs://.",
    ),
]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
DnsLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=40)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Accelerator = Literal["nvidia", "ascend", "cpu"]


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class SecretRef(ApiModel):
    """A key in a Secret of the resource's namespace. Credentials never sit in a spec."""

    name: DnsLabel
    key: str | None = Field(default=None, max_length=253)


class Resources(ApiModel):
    """Container resources beyond the accelerator (which the operator adds itself)."""

    requests: dict[str, str | int] = Field(default_factory=dict)
    limits: dict[str, str | int] = Field(default_factory=dict)


class PodOverlay(ApiModel):
    """What a user may add to every child pod: placement, volumes, pull secrets."""

    image: str | None = Field(default=None, max_length=512, description="Container image.")
    service_account_name: str | None = Field(default=None, max_length=253)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] | None = None
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)
    image_pull_secrets: list[dict[str, Any]] = Field(default_factory=list)
    env: list[dict[str, Any]] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    priority_class_name: str | None = Field(default=None, max_length=253)
    scheduler_name: str | None = Field(default=None, max_length=253)


class Queueing(ApiModel):
    """Queue and gang-scheduling hooks, passed through to the child Job and its pods."""

    kueue_queue: str | None = Field(
        default=None, max_length=63, description="kueue.x-k8s.io/queue-name on the Job."
    )
    volcano_queue: str | None = Field(
        default=None, max_length=63, description="scheduling.volcano.sh/queue-name."
    )
    pod_group: str | None = Field(
        default=None,
        max_length=63,
        description="Pod group for Volcano (annotation) and coscheduling (label).",
    )


class Condition(ApiModel):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class CommonStatus(ApiModel):
    """Fields every kind's status has."""

    model_config = ConfigDict(extra="allow")

    phase: Phase | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
