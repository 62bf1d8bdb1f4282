"""Device-hours of a Curriculum from measured throughputs (`sailvl plan FILE`). Pure.

Each training stage's work comes from its budget through the same arithmetic the trainer
uses (:mod:`sailvl.api.plan`: a samples budget rounds up to whole steps of globalBatch,
a steps budget is steps x globalBatch samples); a tokens budget is its tokens. Dividing
by a per-device throughput gives device-hours; dividing those by the stage's world size
(nodes x devicesPerNode) gives wall-clock hours. Scaling is taken as linear in devices:
the throughput should be measured at (or near) the world size the stage runs.

Throughput file (YAML or JSON; `tests/gpu/train_gpu.py --throughput-out FILE` writes one
from a run, or write it by hand)::

    device: Ascend 910B             # what a "device-hour" is, printed in the table
    source: how the figures were obtained (a run, a log, a vendor figure)
    stages:                         # by stage preset or stage name; per device
      pretrain-alignment: {tokensPerSecond: 2400}
      sft-knowledge: {samplesPerSecond: 1.1}
    default: {tokensPerSecond: 2000, tokensPerSample: 1800}   # stages not listed
    caption: {imagesPerSecond: 4.0, images: 300000000}        # optional caption step

An entry gives `tokensPerSecond` or `samplesPerSecond` (or both); `tokensPerSample`
converts between them when a stage's budget is in the other unit. A stage whose budget
cannot be converted with its entry is an error naming the stage and what is missing.

The paper's reported compute (Ascend 910B NPU-hours, `PAPER_HOURS`) is printed next to
the plan for the matching model preset: 2B 90,053 pretraining + 10,992 SFT = 101,045;
8B 19,575 in all. Pretraining is the stages whose preset starts with `pretrain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .curriculum import CurriculumSpec
from .plan import PlanError, plan_budget

#: The paper's NPU-hours on Ascend 910B by model preset and phase ("all" = the total).
PAPER_HOURS: dict[str, dict[str, int]] = {
    "2b": {"pretrain": 90_053, "sft": 10_992, "all": 101_045},
    "8b": {"all": 19_575},
}
PAPER_DEVICE = "Ascend 910B"


@dataclass(frozen=True, kw_only=True)
class Rate:
    """One throughput entry, per device."""

    tokens_per_second: float | None = None
    samples_per_second: float | None = None
    tokens_per_sample: float | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> Rate:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: must be a mapping")
        names = {"tokensPerSecond", "samplesPerSecond", "tokensPerSample"}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown field (use {sorted(names)})")
        vals = {}
        for name in names:
            v = raw.get(name)
            if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise ValueError(f"{where}.{name}: must be a positive number, got {v!r}")
            vals[name] = float(v) if v is not None else None
        if vals["tokensPerSecond"] is None and vals["samplesPerSecond"] is None:
            raise ValueError(f"{where}: needs tokensPerSecond or samplesPerSecond")
        return cls(
            tokens_per_second=vals["tokensPerSecond"],
            samples_per_second=vals["samplesPerSecond"],
            tokens_per_sample=vals["tokensPerSample"],
        )

    def seconds(self, *, tokens: float | None, samples: float | None) -> float | None:
        """Device-seconds for the work (tokens or samples), None if not convertible."""
        tps, sps, per = self.tokens_per_second, self.samples_per_second, self.tokens_per_sample
        if tokens is not None:
            if tps:
                return tokens / tps
            if sps and per:
                return tokens / per / sps
            return None
        assert samples is not None
        if sps:
            return samples / sps
        if tps and per:
            return samples * per / tps
        return None


@dataclass(frozen=True, kw_only=True)
class Throughputs:
    """A throughput file (module docstring)."""

    device: str
    source: str
    stages: dict[str, Rate]
    default: Rate | None = None
    caption_images_per_second: float | None = None
    caption_images: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> Throughputs:
        if not isinstance(raw, dict):
            raise ValueError("throughput file: must be a mapping")
        unknown = sorted(set(raw) - {"device", "source", "stages", "default", "caption"})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field")
        device = raw.get("device")
        if not isinstance(device, str) or not device:
            raise ValueError("device: required, the accelerator the figures are for")
        stages_raw = raw.get("stages") or {}
        if not isinstance(stages_raw, dict):
            raise ValueError("stages: must be a mapping of stage -> throughput")
        stages = {str(k): Rate.parse(v, f"stages.{k}") for k, v in stages_raw.items()}
        default = Rate.parse(raw["default"], "default") if raw.get("default") else None
        cap = raw.get("caption") or {}
        ips, images = cap.get("imagesPerSecond"), cap.get("images")
        for name, v in (("imagesPerSecond", ips), ("images", images)):
            if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise ValueError(f"caption.{name}: must be a positive number, got {v!r}")
        return cls(
            device=device,
            source=str(raw.get("source", "")),
            stages=stages,
            default=default,
            caption_images_per_second=float(ips) if ips else None,
            caption_images=int(images) if images else None,
        )

    def rate(self, name: str, preset: str | None) -> Rate | None:
        return (
            self.stages.get(name) or (self.stages.get(preset) if preset else None) or self.default
        )


@dataclass(frozen=True, kw_only=True)
class StepCompute:
    """One step's compute."""

    name: str
    kind: str  # TrainStage | CaptionJob
    phase: str  # pretrain | sft | caption
    work: str  # the budget as the trainer runs it, e.g. "41,016 steps = 21,000,192 samples"
    devices: int
    device_hours: float
    wall_hours: float


def plan_compute(cur: CurriculumSpec, tp: Throughputs) -> list[StepCompute]:
    """Device-hours per step of `cur` at the throughputs `tp`; ValueError naming the
    stage when its budget cannot be turned into time with the figures given."""
    from .compose import caption_spec, stage_spec

    rows: list[StepCompute] = []
    if cur.caption is not None and tp.caption_images_per_second and tp.caption_images:
        cap = caption_spec(cur)
        devices = cap.parallelism * max(cap.devices_per_pod, 1)
        hours = tp.caption_images / tp.caption_images_per_second / 3600
        work = f"{tp.caption_images:,} images"
        rows.append(StepCompute(name="caption", kind="CaptionJob", phase="caption", work=work,
                                devices=devices, device_hours=hours, wall_hours=hours / devices))  # fmt: skip
    for i, st in enumerate(cur.stages):
        spec = stage_spec(cur, i).resolved()
        devices = spec.nodes * spec.devices_per_node
        rate = tp.rate(st.name, spec.preset)
        if rate is None:
            raise ValueError(
                f"stages.{st.name}: no throughput for it (add stages.{spec.preset or st.name} or default)"
            )
        b, gb = spec.budget, spec.global_batch or 1
        if b.tokens is not None:
            tokens: float | None = float(b.tokens)
            samples: float | None = None
            work = f"{b.tokens:,} tokens"
        else:
            kind, value = ("samples", b.samples) if b.samples is not None else ("steps", b.steps)
            try:
                steps = plan_budget(kind, int(value or 0), gb).total_steps
            except PlanError as err:
                raise ValueError(f"stages.{st.name}.budget: {err}") from None
            tokens, samples = None, float(steps * gb)
            work = f"{steps:,} steps x {gb} = {steps * gb:,} samples"
        seconds = rate.seconds(tokens=tokens, samples=samples)
        if seconds is None:
            have = "tokensPerSecond" if rate.tokens_per_second else "samplesPerSecond"
            raise ValueError(
                f"stages.{st.name}: its budget is in {'tokens' if tokens else 'samples'} and its "
                f"throughput only gives {have}: add tokensPerSample to convert"
            )
        hours = seconds / 3600
        phase = "pretrain" if (spec.preset or "").startswith("pretrain") else "sft"
        rows.append(StepCompute(name=st.name, kind="TrainStage", phase=phase, work=work,
                                devices=devices, device_hours=hours, wall_hours=hours / devices))  # fmt: skip
    return rows


def paper_comparison(preset: str, rows: list[StepCompute]) -> list[tuple[str, float, int]]:
    """(phase, our device-hours, the paper's NPU-hours) for the phases the paper reports
    for this model preset (training only; the paper does not report captioning)."""
    paper = PAPER_HOURS.get(preset, {})
    train = [r for r in rows if r.kind == "TrainStage"]
    ours = {
        "pretrain": sum(r.device_hours for r in train if r.phase == "pretrain"),
        "sft": sum(r.device_hours for r in train if r.phase == "sft"),
        "all": sum(r.device_hours for r in train),
    }
    return [(phase, ours[phase], hours) for phase, hours in paper.items()]


def render(cur: CurriculumSpec, tp: Throughputs, rows: list[StepCompute]) -> str:
    """The table `sailvl plan` prints."""
    out = [f"device: {tp.device}" + (f"  ({tp.source})" if tp.source else "")]
    head = ("step", "work", "devices", "device-hours", "wall hours")
    table = [head] + [
        (r.name, r.work, str(r.devices), f"{r.device_hours:,.0f}", f"{r.wall_hours:,.1f}")
        for r in rows
    ]
    train = [r for r in rows if r.kind == "TrainStage"]
    table.append(("training total", "", "", f"{sum(r.device_hours for r in train):,.0f}",
                  f"{sum(r.wall_hours for r in train):,.1f}"))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        out.append("  ".join(cells).rstrip())
    cmp = paper_comparison(cur.model.preset, rows)
    if cmp:
        out.append(
            f"paper ({cur.model.preset}, {PAPER_DEVICE} NPU-hours) vs this plan ({tp.device}):"
        )
        for phase, ours, paper in cmp:
            ratio = ours / paper if paper else math.nan
            out.append(f"  {phase:<8} paper {paper:>9,}  plan {ours:>12,.0f}  ratio {ratio:.2f}")
    return "\n".join(out)
