"""The five kinds: their spec / status models and CRD naming in one table.

Short names are checked against every built-in resource's names and those of the
schedulers and training operators installed next to this one (Kueue, Volcano, Kubeflow,
JobSet, LeaderWorkerSet, ECK): ``kubectl get <short>`` must list our resource and
nothing else (``cj`` is CronJob's, ``es`` ECK's Elasticsearch). See
tests/unit/test_crds.py for the pinned lists and tests/cluster/test_crds.py for the
check against a live API server's discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from . import childnames
from .caption import CaptionJobSpec, CaptionJobStatus
from .curriculum import CurriculumSpec, CurriculumStatus, StageDefaults
from .datajob import DataJobSpec, DataJobStatus
from .evalsuite import EvalSuiteSpec, EvalSuiteStatus
from .experiment import ExperimentSpec, ExperimentStatus
from .train import TrainStageSpec, TrainStageStatus


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    # CEL rules on the whole spec: (rule, message). No oldSelf here: a spec-level
    # transition rule that reads an optional field fails every update without it.
    spec_rules: tuple[tuple[str, str], ...] = ()
    # Immutable fields (dotted paths under spec): crdgen puts the transition rule
    # ``self == oldSelf`` on the field itself, which the API server evaluates only when
    # the old and new object both have the field. Each path must therefore be required
    # or defaulted all the way down (see defaulted_objects), or removing it would pass.
    immutable: tuple[str, ...] = ()
    # Optional object fields the API server defaults to {} so that their own defaults
    # (e.g. model.preset: 2b) are always stored and immutability rules always apply.
    defaulted_objects: tuple[str, ...] = ()
    # CEL rules at the root (the only place metadata.name is readable): dicts with rule
    # and message or messageExpression.
    root_rules: tuple[dict[str, str], ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()


_PHASE = PrinterColumn("Phase", ".status.phase")
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
# The phase is the operator's verdict; the message says why (a failure's cause, the gate
# that failed). Shown with -o wide, as Job-like kinds show their message.
_MESSAGE = PrinterColumn("Message", ".status.message", priority=1)

KINDS: Final[dict[str, KindInfo]] = {
    "CaptionJob": KindInfo(
        kind="CaptionJob",
        plural="captionjobs",
        short_names=("capjob",),
        spec=CaptionJobSpec,
        status=CaptionJobStatus,
        columns=(
            _PHASE,
            PrinterColumn("Done", ".status.shardsDone", "integer"),
            PrinterColumn("Shards", ".status.shardsTotal", "integer"),
            PrinterColumn("Samples", ".status.samples", "integer"),
            _AGE,
            _MESSAGE,
        ),
        spec_rules=(("self.input != self.output", "output must differ from input"),),
        root_rules=tuple(childnames.sharded_rules()),
    ),
    "TrainStage": KindInfo(
        kind="TrainStage",
        plural="trainstages",
        short_names=("ts",),
        spec=TrainStageSpec,
        status=TrainStageStatus,
        columns=(
            _PHASE,
            PrinterColumn("Preset", ".spec.preset"),
            PrinterColumn("Step", ".status.step", "integer"),
            PrinterColumn("Loss", ".status.loss", "number"),
            PrinterColumn("Restarts", ".status.restarts", "integer"),
            _AGE,
            PrinterColumn("Suspend", ".spec.suspend", "boolean", priority=1),
            _MESSAGE,
        ),
        immutable=("model.preset", "output"),
        defaulted_objects=("model",),
        root_rules=tuple(childnames.train_rules()),
    ),
    "EvalSuite": KindInfo(
        kind="EvalSuite",
        plural="evalsuites",
        short_names=("evs",),
        spec=EvalSuiteSpec,
        status=EvalSuiteStatus,
        columns=(
            _PHASE,
            PrinterColumn("Overall", ".status.overall", "number"),
            PrinterColumn("Done", ".status.benchmarksDone", "integer"),
            _AGE,
            _MESSAGE,
        ),
        spec_rules=(
            (
                "(has(self.benchmarks) && size(self.benchmarks) > 0) || has(self.suite)",
                "set benchmarks or suite",
            ),
        ),
        root_rules=tuple(childnames.sharded_rules()),
    ),
    "Curriculum": KindInfo(
        kind="Curriculum",
        plural="curricula",
        short_names=("cur",),
        spec=CurriculumSpec,
        status=CurriculumStatus,
        columns=(
            _PHASE,
            PrinterColumn("Step", ".status.currentStep"),
            PrinterColumn("Done", ".status.stepsDone", "integer"),
            PrinterColumn("Total", ".status.stepsTotal", "integer"),
            _AGE,
            _MESSAGE,
        ),
        spec_rules=(
            (
                "self.stages.all(s, self.stages.exists_one(t, t.name == s.name))",
                "stage names must be unique",
            ),
        ),
        immutable=("storage.uri", "model.preset"),
        defaulted_objects=("model",),
        root_rules=tuple(
            childnames.curriculum_rules(
                StageDefaults.model_fields["max_restarts"].default,
                StageDefaults.model_fields["nodes"].default,
            )
        ),
    ),
    "Experiment": KindInfo(
        kind="Experiment",
        plural="experiments",
        short_names=("exp",),
        spec=ExperimentSpec,
        status=ExperimentStatus,
        columns=(
            _PHASE,
            PrinterColumn("Strategy", ".status.strategy"),
            PrinterColumn("Running", ".status.trialsRunning", "integer"),
            PrinterColumn("Done", ".status.trialsDone", "integer"),
            PrinterColumn("Total", ".status.trialsTotal", "integer"),
            PrinterColumn("Best", ".status.best"),
            _AGE,
            _MESSAGE,
        ),
        immutable=("storage.uri", "model.preset"),
        defaulted_objects=("model",),
        # The trial children's names (<name>-<trial>-<step>) depend on the strategy; CEL
        # checks the label shape, and validation (sailvl.experiment.checks) the length.
        root_rules=(
            {
                "rule": f"self.metadata.name.matches('{childnames.DNS1035_LABEL}')",
                "message": "metadata.name must be a DNS-1035 label (lower-case letters, "
                "digits and '-', starting with a letter, no dots): its trials' stages "
                "become TrainStages <name>-<trial>-<stage>",
            },
        ),
    ),
    "DataJob": KindInfo(
        kind="DataJob",
        plural="datajobs",
        short_names=("dj",),
        spec=DataJobSpec,
        status=DataJobStatus,
        columns=(
            _PHASE,
            PrinterColumn("Task", ".spec.task"),
            PrinterColumn("Done", ".status.shardsDone", "integer"),
            PrinterColumn("Shards", ".status.shardsTotal", "integer"),
            _AGE,
            _MESSAGE,
        ),
        spec_rules=(
            ("self.input != self.output", "output must differ from input"),
            ("self.task != 'score' || has(self.score)", "task score needs score.judge"),
            (
                "self.task != 'filter' || (has(self.filter) && self.parallelism == 1)",
                "task filter needs filter and parallelism 1 (its balance draw is global)",
            ),
        ),
        root_rules=tuple(childnames.sharded_rules()),
    ),
}
