"""One optimizer step's samples -> micro-batches, the same count on every rank.

Each rank takes exactly `per_rank_batch` samples per step (see `schedule`), packs them
with a FRESH stream accumulator and flushes it at the end of the step. Nothing is
carried from one step to the next, so the resume state at a step boundary is just the
reader position: a restarted run replays exactly the samples after the checkpoint.

Ranks must run the same number of forward passes per step: ZeRO-3 gathers parameters
with collectives inside every forward, and a rank with one micro-batch fewer would
leave the others waiting forever. `equalize` pads a rank's list to the group's maximum
with copies of its last micro-batch whose loss weights are all zero (they cost compute
but contribute nothing to the loss or the gradients).

Without packing (`packing: enabled: false`, the baseline of the benchmark), samples go
`micro_batch` at a time into a right-padded batch; causal attention never lets a real
token see the pads after it, and pads carry no loss weight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch

from sailvl.data.packing import IGNORE_INDEX, Config, PackedBatch, StreamAccumulator, collate


def take(items: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The next `n` samples of the reader; RuntimeError if the stream ends early."""
    out = []
    for _ in range(n):
        try:
            out.append(next(items))
        except StopIteration:
            raise RuntimeError(f"data stream ended after {len(out)} of {n} samples") from None
    return out


def pack_step(samples: list[dict[str, Any]], config: Config) -> list[PackedBatch]:
    """Packed rows of one step's samples (fresh accumulator, flushed)."""
    acc = StreamAccumulator(config)
    rows = list(acc.pack(samples, flush=True))
    lost = acc.stats.samples_in - acc.stats.samples_packed
    if lost:
        raise RuntimeError(f"packing dropped {lost} samples: {dict(acc.stats.skipped)}")
    return rows


def pad_step(samples: list[dict[str, Any]], config: Config, micro_batch: int) -> list[PackedBatch]:
    """Padded micro-batches of `micro_batch` samples each (the no-packing baseline)."""
    out = []
    for i in range(0, len(samples), micro_batch):
        group = [collate([s], config) for s in samples[i : i + micro_batch]]
        width = max(b.input_ids.shape[1] for b in group)

        def pad(t: torch.Tensor, value: float, w: int = width) -> torch.Tensor:
            return torch.nn.functional.pad(t, (0, w - t.shape[1]), value=value)

        pixels = [b.pixel_values for b in group if b.pixel_values is not None]
        out.append(
            PackedBatch(
                input_ids=torch.cat([pad(b.input_ids, config.pad_token_id) for b in group]),
                labels=torch.cat([pad(b.labels, IGNORE_INDEX) for b in group]),
                position_ids=torch.arange(width).expand(len(group), width).clone(),
                loss_weight=torch.cat([pad(b.loss_weight, 0.0) for b in group]),
                cu_seqlens=torch.tensor([0, width], dtype=torch.int32),
                max_seqlen=width,
                pixel_values=torch.cat(pixels) if pixels else None,
                sample_ids=[i for b in group for i in b.sample_ids],
                num_real_tokens=sum(b.num_real_tokens for b in group),
                num_pad_tokens=width * len(group) - sum(b.num_real_tokens for b in group),
                num_tiles=sum(b.num_tiles for b in group),
            )
        )
    return out


def dummy_of(batch: PackedBatch) -> PackedBatch:
    """A copy of `batch` that contributes nothing: zero loss weight, no ids, no tokens."""
    return replace(
        batch,
        loss_weight=torch.zeros_like(batch.loss_weight),
        sample_ids=[],
        num_real_tokens=0,
        num_pad_tokens=batch.num_real_tokens + batch.num_pad_tokens,
    )


def equalize(rows: list[PackedBatch], target: int) -> list[PackedBatch]:
    """`rows` padded with zero-weight copies of its last row up to `target` rows."""
    if len(rows) > target:
        raise ValueError(f"target {target} is below the {len(rows)} rows this rank has")
    if not rows:
        raise ValueError("a step needs at least one row per rank")
    return rows + [dummy_of(rows[-1]) for _ in range(target - len(rows))]


def model_inputs(batch: PackedBatch, device: Any) -> dict[str, Any]:
    """Forward kwargs on `device`; padded batches carry no packing boundaries."""
    if batch.input_ids.shape[0] == 1:
        kwargs = batch.model_inputs()
    else:
        kwargs = {
            "input_ids": batch.input_ids,
            "position_ids": batch.position_ids,
            "use_cache": False,
        }
        if batch.pixel_values is not None:
            kwargs["pixel_values"] = batch.pixel_values
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
