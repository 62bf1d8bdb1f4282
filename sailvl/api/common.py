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

from pydantic import BaseModel, ConfigDict, Field, model_validator
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
# Value of the Ascend device plugin's `accelerator-type` node label (e.g. module-910b-8 for
# an 8-NPU 910B server, module for 910); "" selects no type. Unset: the operator default.
AcceleratorType = Annotated[
    str,
    Field(
        max_length=63,
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
        description="Ascend only: accelerator-type node label (910 vs 910B); '' for any.",
    ),
]


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
        # A docstring under a field is its description (the CRD's, kubectl explain).
        use_attribute_docstrings=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"


class SecretRef(ApiModel):
    """A key in a Secret of the resource's namespace. Credentials never sit in a spec."""

    name: DnsLabel
    """Name of the Secret, in the resource's namespace."""
    key: SecretKey | None = Field(
        default=None, description="Key in the Secret (the judge's default: apiKey)."
    )


class StorageSecretKeys(ApiModel):
    """Which key of the storage Secret feeds which AWS variable of the job pods. The two
    credentials must exist in the Secret (a pod without them does not start:
    CreateContainerConfigError names the key); the other three are optional."""

    access_key_id: SecretKey = Field(default="accessKeyId", description="-> AWS_ACCESS_KEY_ID")
    secret_access_key: SecretKey = Field(
        default="secretAccessKey", description="-> AWS_SECRET_ACCESS_KEY"
    )
    session_token: SecretKey = Field(
        default="sessionToken", description="-> AWS_SESSION_TOKEN (optional)"
    )
    endpoint: SecretKey = Field(default="endpoint", description="-> AWS_ENDPOINT_URL (optional)")
    region: SecretKey = Field(default="region", description="-> AWS_DEFAULT_REGION (optional)")


class StorageSecretRef(ApiModel):
    """Object-store credentials: a Secret whose named keys become the pod's AWS_* env
    variables (one ``secretKeyRef`` each, defaults in :class:`StorageSecretKeys`)."""

    name: DnsLabel
    """Name of the Secret, in the resource's namespace."""
    keys: StorageSecretKeys = Field(default_factory=StorageSecretKeys)
    """Which key of the Secret feeds which AWS_* variable; each defaults to the camelCase
    variable name (accessKeyId, secretAccessKey, ...)."""


class Resources(ApiModel):
    """Container resources beyond the accelerator (which the operator adds itself)."""

    requests: dict[str, str | int] = Field(default_factory=dict)
    """Resource requests added to the container (e.g. cpu: 8, memory: 64Gi), as Kubernetes
    quantities."""
    limits: dict[str, str | int] = Field(default_factory=dict)
    """Resource limits added to the container, as Kubernetes quantities; a limit must not be
    below its request."""


class PodOverlay(ApiModel):
    """What a user may add to every child pod: placement, volumes, pull secrets, security
    context and the /dev/shm size."""

    image: str | None = Field(default=None, max_length=512, description="Container image.")
    service_account_name: str | None = Field(default=None, max_length=253)
    """ServiceAccount of the pods. Default: sailvl-job, which may patch only its resource's
    progress in status."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the pods must match, merged over the operator's own (e.g. the Ascend
    accelerator label)."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """Pod tolerations (core/v1 Toleration objects), e.g. for tainted GPU nodes."""
    affinity: dict[str, Any] | None = None
    """Pod affinity (core/v1 Affinity), e.g. to pack a pod group into one rack."""
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    """Extra pod volumes (core/v1 Volume objects), e.g. a dataset cache."""
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)
    """Mounts of those volumes into the main container (core/v1 VolumeMount)."""
    image_pull_secrets: list[dict[str, Any]] = Field(default_factory=list)
    """Pull secrets for the image: a list of {name: <secret>}."""
    env: list[dict[str, Any]] = Field(default_factory=list)
    """Extra environment variables of the main container (core/v1 EnvVar: name plus value or
    valueFrom)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels added to every pod."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations added to every pod."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the pods (scheduling priority and preemption)."""
    scheduler_name: str | None = Field(default=None, max_length=253)
    """Scheduler of the pods (e.g. volcano); default: the operator's setting, else the cluster
    default scheduler."""
    security_context: dict[str, Any] | None = Field(
        default=None,
        description="Pod securityContext, merged key by key over the restricted defaults "
        "(runAsNonRoot, runAsUser 1000, RuntimeDefault seccomp); e.g. supplementalGroups.",
    )
    container_security_context: dict[str, Any] | None = Field(
        default=None,
        description="Container securityContext, merged key by key over the defaults "
        "(allowPrivilegeEscalation false, all capabilities dropped).",
    )
    shm_size: str | None = Field(
        default=None,
        pattern=QUANTITY_PATTERN,
        max_length=32,
        description="sizeLimit of the memory-backed /dev/shm (e.g. 64Gi); unset: no limit "
        "beyond the pod's memory.",
    )


class Queueing(ApiModel):
    """Queue and gang-scheduling hooks, passed through to the child Job and its pods."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.gang) && has(self.podGroup))",
                    "message": "set gang (the operator's PodGroup) or podGroup (yours), not both",
                }
            ]
        }
    )

    kueue_queue: str | None = Field(
        default=None, max_length=63, description="kueue.x-k8s.io/queue-name on the Job."
    )
    volcano_queue: str | None = Field(
        default=None, max_length=63, description="scheduling.volcano.sh/queue-name."
    )
    pod_group: str | None = Field(
        default=None,
        max_length=63,
        description="A pod group you manage yourself, for Volcano (annotation) and "
        "coscheduling (label); use gang to have the operator create one.",
    )
    gang: Literal["volcano", "coscheduling"] | None = Field(
        default=None,
        description="Gang-schedule the pods: the operator creates and owns a PodGroup "
        "(Volcano scheduling.volcano.sh/v1beta1 or coscheduling scheduling.x-k8s.io/"
        "v1alpha1) with minMember = pods, one per restart attempt.",
    )

    @model_validator(mode="after")
    def _one_group(self) -> Queueing:
        if self.gang is not None and self.pod_group is not None:
            raise ValueError("set gang (the operator's PodGroup) or podGroup (yours), not both")
        return self


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
    """Summary state: Pending (children being created or queued), Running, Succeeded, Failed or
    Suspended. Derived by the operator from the objects it owns."""
    message: str | None = None
    """Human-readable detail: why the resource failed, or the job's last report."""
    error: str | None = None
    """Class of the fatal error a job reported with its message (e.g. ConfigError,
    InvalidSpec, TransientStorageError); written by the job, not the operator."""
    conditions: list[Condition] = Field(default_factory=list)
    """The resource's conditions (metav1.Condition), keyed by type."""
    observed_generation: int | None = None
    """metadata.generation of the spec the operator last acted on."""
    start_time: str | None = None
    """When the first pod started running (RFC 3339)."""
    completion_time: str | None = None
    """When the resource reached Succeeded or Failed (RFC 3339)."""
