"""The API of the five resources: spec and status models, defaults, validation, CRDs.

Pure: imports pydantic and the standard library only (no torch, kopf, boto3, client).
"""

from .benchmarks import BENCHMARKS, CATEGORIES, SCORERS, SUITES
from .caption import CaptionJobSpec, CaptionJobStatus
from .constants import API_VERSION, GROUP, VERSION
from .curriculum import CurriculumSpec, CurriculumStatus, StepStatus
from .evalsuite import EvalSuiteSpec, EvalSuiteStatus
from .experiment import ExperimentSpec, ExperimentStatus
from .kinds import KINDS
from .presets import MODEL_LIMITS, STAGE_NAMES, TABLE3, stage_preset
from .train import TrainStageSpec, TrainStageStatus
from .validation import SpecError, parse_resource, parse_spec

__all__ = [
    "API_VERSION",
    "BENCHMARKS",
    "CATEGORIES",
    "GROUP",
    "KINDS",
    "MODEL_LIMITS",
    "SCORERS",
    "STAGE_NAMES",
    "SUITES",
    "TABLE3",
    "VERSION",
    "CaptionJobSpec",
    "CaptionJobStatus",
    "CurriculumSpec",
    "CurriculumStatus",
    "EvalSuiteSpec",
    "EvalSuiteStatus",
    "ExperimentSpec",
    "ExperimentStatus",
    "SpecError",
    "StepStatus",
    "TrainStageSpec",
    "TrainStageStatus",
    "parse_resource",
    "parse_spec",
    "stage_preset",
]
