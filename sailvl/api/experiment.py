"""Experiment: the paper's data-curation and scaling studies as trials with a decision.

An Experiment owns a set of trials; each trial is a short training run (one TrainStage,
or a short chain) followed by an EvalSuite, built from one template (``template``) with
one variation chosen by the strategy (``strategy``: exactly one of quickQuality,
composition, incremental, checkpointScaling, correlation, compare). Trials run under
a ``parallelism`` limit; when they are done the strategy's analysis writes the decision.

How a spec becomes trials is :mod:`sailvl.experiment.trials` (pure, shared by the
operator and ``sailvl run``). A trial's training part is built exactly like a one- or
few-stage Curriculum (:mod:`sailvl.api.compose`): ``defaults`` fill every stage, the
template stage gives preset, optimizer, budget and batch, and the strategy's variation
is laid over it (the data list, the ``samples`` budget, the starting checkpoint, a
group's share). Every field is checked up front by building every trial's children
(:mod:`sailvl.experiment.checks`), so a trial the trainer would refuse fails the
Experiment before its first child exists.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from .common import ApiModel, CommonStatus, DnsLabel, PositiveInt, Uri
from .curriculum import StageDefaults, StepEval, Storage
from .evalsuite import EvalGeneration, Judge
from .presets import Module, StageName
from .train import Budget, DataSource, ModelRef, Optimizer

# Trial and variant names end up inside child names <experiment>-<trial>-<step>; they
# are kept short so that the children fit in a 63-character label.
TrialName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=24)
]

STRATEGIES = (
    "quickQuality",
    "composition",
    "incremental",
    "checkpointScaling",
    "correlation",
    "compare",
)


class TrialStage(ApiModel):
    """A training stage fragment: what a Curriculum stage holds, all of it optional here.
    The strategy supplies what varies (data, samples budget, starting checkpoint)."""

    name: DnsLabel = "train"
    """Stage name inside the trial (default train); its eval step is <name>-eval. Only
    compare plans chain several stages, which must then be named apart."""
    preset: StageName | None = None
    """Table 3 stage preset: pretrain-alignment, pretrain-advance, sft-knowledge,
    sft-instruction, sft-preference; fills trainable, maxTiles, globalBatch and lr."""
    trainable: list[Module] | None = Field(default=None, min_length=1, max_length=3)
    """Modules trained (vision, projector, llm). Default: the preset's."""
    data: list[DataSource] = Field(default_factory=list, max_length=64)
    """Datasets of the stage's mixture; strategies that vary the data replace or extend
    this list (see each strategy)."""
    max_tiles: int | None = Field(default=None, ge=1)
    """Largest tile grid per image (i*j tiles of 448 px). Default: the preset's."""
    budget: Budget | None = None
    """How long to train: exactly one of tokens, samples, steps. quickQuality sets
    samples itself (its subset sizes)."""
    optimizer: Optimizer = Field(default_factory=Optimizer)
    """Optimizer and learning-rate schedule (lr default: the preset's)."""
    global_batch: int | None = Field(default=None, ge=1)
    """Samples per optimizer step over all devices. Default: the preset's."""
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Any other TrainStage spec fields for this stage."
    )

    def source_fields(self) -> set[str]:
        """Wire names of the fields written in the YAML (they override the template's)."""
        return {type(self).model_fields[k].alias or k for k in self.model_fields_set}


class TrialTemplate(ApiModel):
    """What every trial runs: a training stage, then an eval of its final checkpoint."""

    stage: TrialStage = Field(default_factory=TrialStage)
    """The training stage every trial starts from; the strategy varies it."""
    eval: StepEval
    """The eval after training (benchmarks or a named suite); selection.metric is read
    from its scores."""


class Selection(ApiModel):
    """Which score decides."""

    metric: str = Field(default="overall", min_length=1, max_length=63)
    """A benchmark name (e.g. docvqa), a sub-metric (pope.f1), a category (ocr_vqa, ...) or
    overall (the mean of the normalised 0-100 scores; for suites without categories,
    such as understanding, the mean over their benchmarks). Default overall."""


class Candidate(ApiModel):
    """A candidate SFT collection: a named list of datasets."""

    name: TrialName
    """Candidate name (DNS label, at most 24 characters); part of its trials' names."""
    data: list[DataSource] = Field(min_length=1, max_length=32)
    """The collection's datasets (1 to 32), as a stage's data list."""


class QuickQuality(ApiModel):
    """Paper 3.3.1 Quick Quality Evaluation: each candidate is trained on an N-sample
    subset from the same starting checkpoint and ranked by selection.metric."""

    candidates: list[Candidate] = Field(min_length=2, max_length=32)
    """The collections compared (2 to 32; names unique)."""
    samples: list[PositiveInt] = Field(min_length=1, max_length=4)
    """Subset sizes N (1 to 4, distinct): one trial per candidate and size, trained with
    budget.samples = N (the paper: 2M). With two or more sizes the status reports the
    rank agreement between sizes (Kendall tau, Spearman)."""
    min_kendall_tau: float = Field(default=1.0, ge=-1, le=1)
    """Agreement below this Kendall tau between the ranking at a size and at the largest
    size is a warning (condition RankAgreement False, reason RankDisagreement); default
    1.0: any difference of rank order warns."""

    @model_validator(mode="after")
    def _unique(self) -> QuickQuality:
        _unique([c.name for c in self.candidates], "candidate names")
        _unique([str(n) for n in self.samples], "samples")
        return self


class DataGroup(ApiModel):
    """A named group of the base collection (e.g. document-vqa, math-reasoning)."""

    name: TrialName
    """Group name (DNS label, at most 24 characters)."""
    data: list[DataSource] = Field(min_length=1, max_length=32)
    """The group's datasets with their weights (1 to 32)."""


class Composition(ApiModel):
    """Paper 3.3.1 Composition Evaluation: one trial per group with that group's share
    halved (its datasets' weights times factor), plus the base."""

    groups: list[DataGroup] = Field(min_length=2, max_length=16)
    """The base collection's groups (2 to 16, names unique, 64 datasets in all)."""
    factor: float = Field(default=0.5, gt=0, lt=1)
    """Weight multiplier of the varied group (0 < factor < 1; default 0.5, halving)."""
    tolerance: float = Field(default=0.0, ge=0)
    """A change hurts when the score drops by more than this (0-100 scale; default 0):
    groups whose reduction did not hurt keep the reduced share in the proposed mixture."""

    @model_validator(mode="after")
    def _check(self) -> Composition:
        _unique([g.name for g in self.groups], "group names")
        total = sum(len(g.data) for g in self.groups)
        if total > 64:
            raise ValueError(f"the groups hold {total} datasets; at most 64")
        return self


class Incremental(ApiModel):
    """Paper 3.3.1 Incremental Evaluation: candidates are added one at a time, in order,
    to the base; one is accepted when its score is >= the best so far minus tolerance."""

    base: list[DataSource] = Field(min_length=1, max_length=32)
    """The collection candidates are added to (1 to 32 datasets)."""
    candidates: list[Candidate] = Field(min_length=1, max_length=16)
    """Candidates in the order they are tried (1 to 16; names unique, not base)."""
    tolerance: float = Field(default=0.0, ge=0)
    """Accepted when score >= best - tolerance (0-100 scale; default 0: improve or
    maintain)."""

    @model_validator(mode="after")
    def _check(self) -> Incremental:
        _unique([c.name for c in self.candidates], "candidate names")
        total = len(self.base) + sum(len(c.data) for c in self.candidates)
        if total > 64:
            raise ValueError(
                f"base and candidates hold {total} datasets; at most 64 (the curated "
                "collection may hold them all)"
            )
        return self


class ScalingCheckpoint(ApiModel):
    """An intermediate checkpoint of a training run, and the tokens it had seen."""

    name: TrialName
    """Checkpoint name (DNS label, at most 24 characters); its trial is anneal-<name>."""
    uri: Uri
    """Loadable model folder (Hugging Face format)."""
    tokens: PositiveInt
    """Training tokens the checkpoint had consumed (the x axis)."""


class CheckpointScaling(ApiModel):
    """Paper 3.2 (Figures 2-3): checkpoints of a training stage each get a short annealing
    run on a fixed dataset and an eval; the score-vs-tokens curve is fitted log-linearly.

    Either list the checkpoints of an earlier run (``checkpoints``), or let the
    Experiment train template.stage itself (trial ``source``), exporting a loadable
    checkpoint every ``interval`` tokens."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.checkpoints) != has(self.interval)",
                    "message": "set checkpoints (an earlier run's) or interval (train the "
                    "template stage here), not both",
                }
            ]
        }
    )

    checkpoints: list[ScalingCheckpoint] | None = Field(default=None, min_length=2, max_length=64)
    """Checkpoints of an earlier run with their token counts (2 to 64, names unique)."""
    interval: PositiveInt | None = None
    """Export a checkpoint every this many tokens while the trial source trains
    template.stage (its budget must be tokens, at least two intervals)."""
    anneal: TrialStage
    """The annealing stage each checkpoint gets (data and budget required: the paper uses
    2M identically distributed samples), fields over template.stage's."""

    @model_validator(mode="after")
    def _one_source(self) -> CheckpointScaling:
        _unique([c.name for c in self.checkpoints or []], "checkpoint names")
        if (self.checkpoints is None) == (self.interval is None):
            raise ValueError(
                "set checkpoints (an earlier run's) or interval (train the template stage "
                "here), not both"
            )
        return self


class NamedCheckpoint(ApiModel):
    """A pretrained checkpoint."""

    name: TrialName
    """Checkpoint name (DNS label, at most 24 characters); also its trial's name."""
    uri: Uri
    """Loadable model folder (Hugging Face format)."""


class Correlation(ApiModel):
    """Paper Appendix G (Figure 11): each checkpoint is evaluated as pretrained (the
    understanding suite) and after the same SFT (template.stage, then template.eval);
    the status reports Pearson rho and R^2 between the two scores."""

    checkpoints: list[NamedCheckpoint] = Field(min_length=3, max_length=64)
    """The pretrained checkpoints (3 to 64, names unique)."""
    pretrain_eval: StepEval = Field(default_factory=lambda: StepEval(suite="understanding"))
    """The eval of each checkpoint before SFT (default: the understanding suite)."""
    pretrain_metric: str = Field(default="overall", min_length=1, max_length=63)
    """Score of the pretrained checkpoint, like selection.metric (default overall: the
    mean over the understanding benchmarks)."""

    @model_validator(mode="after")
    def _unique(self) -> Correlation:
        _unique([c.name for c in self.checkpoints], "checkpoint names")
        return self


class ComparePlan(ApiModel):
    """A named training plan: one stage or a chain; each stage is followed by an eval."""

    name: TrialName
    """Plan name (DNS label, at most 24 characters); its trial's name."""
    stages: list[TrialStage] = Field(min_length=1, max_length=8)
    """The plan's stages in order (1 to 8, names unique), each over template.stage; the
    eval after each is a point of the plan's score-vs-samples curve."""


class Compare(ApiModel):
    """Paper 3.3.2 (Figure 5): training plans with the same total budget side by side."""

    plans: list[ComparePlan] = Field(min_length=2, max_length=8)
    """The plans (2 to 8, names unique); their budgets (samples, or steps x globalBatch)
    must add up to the same total."""
    eval_every: PositiveInt | None = None
    """Samples between the points of a curve inside a stage: each stage exports its model
    every evalEvery samples (checkpoint.exportEverySteps = evalEvery / globalBatch, which
    must divide) and each export is evaluated after the stage, as step
    <stage>-at<step>, so a one-stage plan draws a curve too. Unset: one point per stage
    (its final eval)."""

    @model_validator(mode="after")
    def _unique(self) -> Compare:
        _unique([p.name for p in self.plans], "plan names")
        for i, p in enumerate(self.plans):
            _unique([st.name for st in p.stages], f"plans[{i}].stages names")
        return self


class Strategy(ApiModel):
    """Exactly one strategy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": " + ".join(f"(has(self.{s}) ? 1 : 0)" for s in STRATEGIES) + " == 1",
                    "message": "set exactly one strategy: " + ", ".join(STRATEGIES),
                }
            ]
        }
    )

    quick_quality: QuickQuality | None = None
    """Rank candidate collections trained on N-sample subsets."""
    composition: Composition | None = None
    """Halve each data group of a base collection in turn."""
    incremental: Incremental | None = None
    """Add candidates one at a time; keep those that improve or maintain the score."""
    checkpoint_scaling: CheckpointScaling | None = None
    """Anneal and evaluate checkpoints along a run; fit score against log tokens."""
    correlation: Correlation | None = None
    """Correlate pretrained scores with post-SFT scores over checkpoints."""
    compare: Compare | None = None
    """Run training plans of equal budget side by side."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Strategy:
        if len(self.set_names()) != 1:
            raise ValueError("set exactly one strategy: " + ", ".join(STRATEGIES))
        return self

    def set_names(self) -> list[str]:
        return [s for s in STRATEGIES if getattr(self, _snake(s)) is not None]

    @property
    def kind(self) -> str:
        """The wire name of the strategy that is set (quickQuality, ...)."""
        return self.set_names()[0]

    @property
    def body(self) -> Any:
        return getattr(self, _snake(self.kind))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _unique(names: list[str], what: str) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what} must be unique: {dup}")


class ExperimentSpec(ApiModel):
    storage: Storage
    """Run folder (immutable) and its credentials; trial <t> writes to <uri>/<t>/<step>/."""
    model: ModelRef = Field(default_factory=ModelRef)
    """The model: size preset (immutable) and the starting checkpoint of every trial
    (model.init; checkpointScaling and correlation start from their checkpoints)."""
    defaults: StageDefaults = Field(default_factory=StageDefaults)
    """Settings shared by every trial's stages (accelerator, nodes, DeepSpeed, ...)."""
    template: TrialTemplate
    """The trial template: a training stage and the eval after it."""
    strategy: Strategy
    """How trials vary the template and how the results are decided."""
    selection: Selection = Field(default_factory=Selection)
    """The metric trials are judged by."""
    parallelism: int = Field(default=1, ge=1, le=64)
    """Trials running at the same time (1 to 64; default 1)."""
    eval_data_root: Uri | None = Field(default=None, description="Folder of benchmark TSVs.")
    judge: Judge | None = None
    """Judge for benchmarks scored by a model."""
    eval_generation: EvalGeneration = Field(default_factory=EvalGeneration)
    """Answer generation settings of every eval."""


class TrialStatus(ApiModel):
    """One row per trial."""

    name: str
    """Trial name; its children are <experiment>-<trial>-<step>."""
    variant: dict[str, Any] = Field(default_factory=dict)
    """What this trial varies (candidate, samples, group, checkpoint, plan, ...)."""
    phase: str = "Pending"
    """Pending (not started: waiting for parallelism or an earlier trial), Running,
    Succeeded, Failed or Skipped (an earlier trial it needs failed)."""
    step: str | None = None
    """The trial's step running now (a stage or <stage>-eval)."""
    tokens: int | None = None
    """Training tokens of the trial's checkpoint (checkpointScaling: the checkpoint's)."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Scores of the trial's last eval, 0-100 scale (per benchmark)."""
    overall: float | None = None
    """The selection metric of the trial, 0-100 scale."""
    pretrain: float | None = None
    """correlation: the checkpoint's score before SFT (correlation.pretrainMetric)."""
    message: str | None = None
    """Why the trial failed or was skipped."""


class ExperimentStatus(CommonStatus):
    strategy: str | None = None
    """The strategy (quickQuality, composition, ...)."""
    trials_total: int | None = None
    """Trials of the Experiment."""
    trials_done: int | None = None
    """Trials finished (Succeeded, Failed or Skipped)."""
    trials_running: int | None = None
    """Trials running now (at most parallelism)."""
    trials: list[TrialStatus] = Field(default_factory=list)
    """One row per trial, in order."""
    best: str | None = None
    """The best trial (or candidate / plan) by the selection metric."""
    decision: dict[str, Any] = Field(default_factory=dict)
    """The strategy's result: ranking and rank agreement, effects and proposed mixture,
    accepted / rejected candidates and the curated data list, scaling fits, correlation,
    curves (see the README's Experiments section)."""
