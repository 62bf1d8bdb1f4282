"""Names shared by the API, the operator, the jobs and the chart: one place for each.

Condition types, reasons, phases and label keys are plain string constants so that the
operator, the local executor and the tests compare against the same spelling.
"""

from typing import Final, Literal

GROUP: Final = "sailvl.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "sailvl"

# Phases (status.phase). Suspended is a TrainStage whose Job is suspended (e.g. by Kueue).
Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Suspended"]
PENDING: Final = "Pending"
RUNNING: Final = "Running"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
SUSPENDED: Final = "Suspended"
PHASES: Final = (PENDING, RUNNING, SUCCEEDED, FAILED, SUSPENDED)
TERMINAL_PHASES: Final = (SUCCEEDED, FAILED)

# Condition types (status.conditions[].type), in jobset's spirit.
COND_READY: Final = "Ready"
COND_RUNNING: Final = "Running"
COND_SUCCEEDED: Final = "Succeeded"
COND_FAILED: Final = "Failed"
COND_SUSPENDED: Final = "Suspended"
COND_RESTARTING: Final = "Restarting"
COND_GATE_PASSED: Final = "GatePassed"

# Condition reasons.
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_CREATED: Final = "ChildrenCreated"
REASON_JOB_RUNNING: Final = "JobRunning"
REASON_JOB_SUCCEEDED: Final = "JobSucceeded"
REASON_JOB_FAILED: Final = "JobFailed"
REASON_RESTARTING: Final = "PodFailedRestarting"
REASON_MAX_RESTARTS: Final = "MaxRestartsExceeded"
REASON_DEADLINE: Final = "DeadlineExceeded"
REASON_CONFIG_ERROR: Final = "ConfigError"
# A job exits with this code for a configuration error: retrying cannot help.
EXIT_CONFIG_ERROR: Final = 2
REASON_SUSPENDED: Final = "Suspended"
REASON_RESUMED: Final = "Resumed"
REASON_GATE_FAILED: Final = "GateFailed"
REASON_GATE_PASSED: Final = "GatePassed"
REASON_CHILD_FAILED: Final = "ChildFailed"
REASON_STEP_STARTED: Final = "StepStarted"
REASON_COMPLETED: Final = "Completed"

# Label and annotation keys on children.
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_KIND: Final = f"{GROUP}/kind"
LABEL_NAME: Final = f"{GROUP}/name"
LABEL_CURRICULUM: Final = f"{GROUP}/curriculum"
LABEL_STEP: Final = f"{GROUP}/step"
# An Experiment's children: <experiment>-<trial>-<step> carries experiment, trial, step.
LABEL_EXPERIMENT: Final = f"{GROUP}/experiment"
LABEL_TRIAL: Final = f"{GROUP}/trial"
LABEL_RESTART_ATTEMPT: Final = f"{GROUP}/restart-attempt"
ANNOTATION_CONFIG_HASH: Final = f"{GROUP}/config-hash"
PART_OF_VALUE: Final = "sailvl"
MANAGED_BY_VALUE: Final = "sailvl-operator"

# Labels and annotations of schedulers we pass through.
LABEL_KUEUE_QUEUE: Final = "kueue.x-k8s.io/queue-name"
ANNOTATION_VOLCANO_GROUP: Final = "scheduling.k8s.io/group-name"
ANNOTATION_VOLCANO_QUEUE: Final = "scheduling.volcano.sh/queue-name"
LABEL_COSCHEDULING_GROUP: Final = "scheduling.x-k8s.io/pod-group"

# Extended resources per accelerator, and the Ascend node label set by its device plugin.
ACCELERATOR_RESOURCE: Final = {"nvidia": "nvidia.com/gpu", "ascend": "huawei.com/Ascend910"}
ASCEND_NODE_LABEL: Final = ("accelerator", "huawei-Ascend910")
# The device plugin's label that tells 910 (module, card) from 910B (module-910b-8, ...).
ASCEND_TYPE_LABEL: Final = "accelerator-type"
DEFAULT_ASCEND_TYPE: Final = "module-910b-8"  # Atlas 800T A2, the paper's 910B servers

# Gang scheduling: PodGroup API per `queue.gang`, and the scheduler that honours it.
PODGROUP_API: Final = {
    "volcano": "scheduling.volcano.sh/v1beta1",
    "coscheduling": "scheduling.x-k8s.io/v1alpha1",
}
GANG_SCHEDULER: Final = {"volcano": "volcano", "coscheduling": "scheduler-plugins-scheduler"}

# Pod contract (DESIGN.md section 4).
ENV_MASTER_ADDR: Final = "MASTER_ADDR"
ENV_MASTER_PORT: Final = "MASTER_PORT"
ENV_NNODES: Final = "NNODES"
ENV_NODE_RANK: Final = "NODE_RANK"
ENV_NPROC_PER_NODE: Final = "NPROC_PER_NODE"
ENV_RESTART_ATTEMPT: Final = "SAILVL_RESTART_ATTEMPT"
ENV_CONFIG: Final = "SAILVL_CONFIG"
# The judge's API key (sailvl.eval.judge.JudgeConfig.api_key_env), from judge.apiKeySecret.
ENV_JUDGE_API_KEY: Final = "SAILVL_JUDGE_API_KEY"
DEFAULT_JUDGE_SECRET_KEY: Final = "apiKey"
DEFAULT_MASTER_PORT: Final = 29500
JOB_METRICS_PORT: Final = 9400
CONFIG_MOUNT_PATH: Final = "/etc/sailvl"
CONFIG_FILE_NAME: Final = "job.yaml"
