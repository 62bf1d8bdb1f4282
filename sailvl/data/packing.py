"""The stream accumulator: first-fit packing of tokenised samples into one long row.

Mechanism (InternVL `dataset_packed.py` semantics, re-derived):

- Each sample goes into the FIRST open buffer where both budgets still hold
  (`max_tokens`, `max_tiles`), else opens a new one. A buffer is emitted when nearly
  full (room < `close_slack` tokens, or exactly `max_tiles` tiles), when more than
  `max_buffers` are open (the fullest, earliest on ties), and at the end of the stream
  (all, in opening order). Placement depends only on the input order: deterministic.
- Over-budget samples are skipped with a counted, logged reason, or truncated
  (`overflow="truncate"`): cut at the budget, moved back before an image run the cut
  would split (a tile's features must meet all its context tokens), dropping the cut-off
  images' tiles. Malformed samples are skipped with a reason: nothing is lost silently.
- Collation: position ids restart at 0 per sample (how RoPE and the attention backends
  see separate documents); `cu_seqlens` come from the per-token sample index; pixel
  values are concatenated in sample order so the model's scatter of image features onto
  `<IMG_CONTEXT>` tokens lines up. Each sample's FIRST label is ignored: after the
  next-token shift it would be the previous sample's last target, a term unpacked
  training never has.
- Loss weights (InternVL `len2weight`): supervised tokens of a sample with n of them get
  1 (`token`), 1/n (`sample`) or 1/sqrt(n) (`square`). `packed_loss` divides the
  weighted CE by the weight sum: with `token` it is the unpacked token-mean loss.
- Resume: `state_dict()` holds open buffers and the ready queue with their samples
  (tensors included) and the counters; restored and fed the rest of the stream, the
  accumulator yields exactly what an uninterrupted run would.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value excluded from the loss (HF / InternVL convention)

# Loss weight per supervised token for a sample with n supervised tokens (n > 0).
LOSS_WEIGHTINGS: dict[str, Callable[[int], float]] = {
    "token": lambda n: 1.0,
    "sample": lambda n: 1.0 / n,
    "square": lambda n: 1.0 / math.sqrt(n),
}


@dataclass(kw_only=True)
class Config:
    """Packing budgets and policies (one packed row per micro-batch)."""

    max_tokens: int = 16384  # token budget of one packed row (InternVL max_packed_tokens)
    max_tiles: int = 64  # image-tile budget of one row (InternVL num_images_expected)
    max_buffers: int = 16  # open buffers; beyond this the fullest is emitted
    close_slack: int = 32  # emit a buffer once it has fewer than this many tokens of room
    overflow: str = "skip"  # over-budget sample: "skip" (counted) or "truncate"
    loss_weighting: str = "token"  # a key of LOSS_WEIGHTINGS: token, sample or square
    image_token_id: int | None = None  # <IMG_CONTEXT> id; needed by overflow="truncate"
    tokens_per_tile: int = 256  # <IMG_CONTEXT> tokens per tile; used by truncation
    pad_to_multiple_of: int = 1  # pad each row (own segment, zero weight) for static shapes
    pad_token_id: int = 0  # id of those pad tokens

    def __post_init__(self) -> None:
        for name in ("max_tokens", "max_tiles", "max_buffers", "tokens_per_tile"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.close_slack < self.max_tokens:
            raise ValueError(f"close_slack must be in [0, max_tokens), got {self.close_slack}")
        if self.overflow not in ("skip", "truncate"):
            raise ValueError(f"overflow must be 'skip' or 'truncate', got {self.overflow!r}")
        if self.overflow == "truncate" and self.image_token_id is None:
            raise ValueError("image_token_id is required when overflow='truncate'")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {sorted(LOSS_WEIGHTINGS)}")
        if not 1 <= self.pad_to_multiple_of <= self.max_tokens:
            raise ValueError("pad_to_multiple_of must be in [1, max_tokens]")


@dataclass
class PackedBatch:
    """One packed micro-batch: a single row of concatenated samples."""

    input_ids: torch.Tensor  # [1, T] long
    labels: torch.Tensor  # [1, T] long, IGNORE_INDEX at each sample's first token and pads
    position_ids: torch.Tensor  # [1, T] long, restarting at 0 per sample
    loss_weight: torch.Tensor  # [1, T] float32, 0 where the label is ignored
    cu_seqlens: torch.Tensor  # [S + 1] int32 segment starts (+ a pad segment if padded)
    max_seqlen: int  # longest segment
    pixel_values: torch.Tensor | None  # [tiles, C, H, W] in sample order, None if no image
    sample_ids: list[str]  # ids of the packed samples, in row order
    num_real_tokens: int  # tokens that belong to samples
    num_pad_tokens: int  # tokens added by pad_to_multiple_of
    num_tiles: int  # image tiles of the packed samples (pixel_values rows, or num_tiles)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for an HF forward with the `sailvl_packed` attention."""
        out: dict[str, Any] = {
            "input_ids": self.input_ids,
            "position_ids": self.position_ids,
            "cu_seq_lens_q": self.cu_seqlens,
            "cu_seq_lens_k": self.cu_seqlens,
            "max_length_q": self.max_seqlen,
            "max_length_k": self.max_seqlen,
            "use_cache": False,  # a cache would make transformers build its own mask
        }
        if self.pixel_values is not None:
            out["pixel_values"] = self.pixel_values
        return out


@dataclass
class Stats:
    """Counters; samples_in == samples_packed + sum(skipped.values()) + buffered."""

    samples_in: int = 0
    samples_packed: int = 0
    truncated: int = 0
    rows: int = 0
    real_tokens: int = 0
    pad_tokens: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _tiles(sample: dict[str, Any]) -> int:
    pv = sample.get("pixel_values")
    return int(pv.shape[0]) if pv is not None else int(sample.get("num_tiles", 0))


def _normalise(sample: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Tensors for input_ids / labels, checked; (None, reason) for a malformed sample."""
    if "input_ids" not in sample or "labels" not in sample or "id" not in sample:
        return None, "missing_field"
    ids = torch.as_tensor(sample["input_ids"], dtype=torch.long).reshape(-1)
    labels = torch.as_tensor(sample["labels"], dtype=torch.long).reshape(-1)
    if ids.numel() != labels.numel():
        return None, "labels_length_mismatch"
    if ids.numel() == 0:
        return None, "empty"
    pv = sample.get("pixel_values")
    if pv is not None and "num_tiles" in sample and int(sample["num_tiles"]) != pv.shape[0]:
        return None, "num_tiles_mismatch"
    out = {**sample, "input_ids": ids, "labels": labels}
    return out, ""


def _truncate(s: dict[str, Any], cfg: Config) -> dict[str, Any] | None:
    """Cut a sample to both budgets without splitting an image's run of context tokens."""
    ids = s["input_ids"]
    is_img = ids == cfg.image_token_id
    tile_of = torch.cumsum(is_img.long(), 0)  # context tokens up to and including t
    cut = min(ids.numel(), cfg.max_tokens)
    # Tile budget: stop before the context token that would start tile max_tiles + 1.
    over = torch.nonzero(is_img & (tile_of > cfg.max_tiles * cfg.tokens_per_tile))
    if over.numel():
        cut = min(cut, int(over[0]))
    # Never split an image run: back off to the start of the run the cut falls inside.
    while 0 < cut < ids.numel() and bool(is_img[cut]) and bool(is_img[cut - 1]):
        cut -= 1
    if cut == 0:
        return None
    kept_ctx = int(is_img[:cut].sum())
    if kept_ctx % cfg.tokens_per_tile:
        return None  # an image run not made of whole tiles: cannot be cut consistently
    out = {**s, "input_ids": ids[:cut], "labels": s["labels"][:cut]}
    n_tiles = kept_ctx // cfg.tokens_per_tile
    if s.get("pixel_values") is not None:
        out["pixel_values"] = s["pixel_values"][:n_tiles]
    if "num_tiles" in s:
        out["num_tiles"] = n_tiles
    return out


def collate(samples: list[dict[str, Any]], cfg: Config) -> PackedBatch:
    """Concatenate normalised samples into one PackedBatch (pure)."""
    weight_of = LOSS_WEIGHTINGS[cfg.loss_weighting]
    ids, labels, pos, weights, pixels, bounds = [], [], [], [], [], [0]
    for s in samples:
        n = s["input_ids"].numel()
        lab = s["labels"].clone()
        lab[0] = IGNORE_INDEX  # see module docstring: no target across a boundary
        sup = lab != IGNORE_INDEX
        n_sup = int(sup.sum())
        w = weight_of(n_sup) if n_sup else 0.0
        ids.append(s["input_ids"])
        labels.append(lab)
        pos.append(torch.arange(n, dtype=torch.long))
        weights.append(sup.float() * w)
        if s.get("pixel_values") is not None and s["pixel_values"].shape[0]:
            pixels.append(s["pixel_values"])
        bounds.append(bounds[-1] + n)
    real = bounds[-1]
    pad = -real % cfg.pad_to_multiple_of
    if pad:
        ids.append(torch.full((pad,), cfg.pad_token_id, dtype=torch.long))
        labels.append(torch.full((pad,), IGNORE_INDEX, dtype=torch.long))
        pos.append(torch.arange(pad, dtype=torch.long))
        weights.append(torch.zeros(pad))
        bounds.append(real + pad)
    cu = torch.tensor(bounds, dtype=torch.int32)
    return PackedBatch(
        input_ids=torch.cat(ids)[None],
        labels=torch.cat(labels)[None],
        position_ids=torch.cat(pos)[None],
        loss_weight=torch.cat(weights).float()[None],
        cu_seqlens=cu,
        max_seqlen=int((cu[1:] - cu[:-1]).max()),
        pixel_values=torch.cat(pixels) if pixels else None,
        sample_ids=[str(s["id"]) for s in samples],
        num_real_tokens=real,
        num_pad_tokens=pad,
        num_tiles=sum(_tiles(s) for s in samples),
    )


class StreamAccumulator:
    """Push samples in, take packed micro-batches out; resumable via state_dict."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = Stats()
        self._buffers: list[list[dict[str, Any]]] = []  # open buffers, opening order
        self._ready: deque[list[dict[str, Any]]] = deque()  # emitted, not yet collated

    @staticmethod
    def _size(buf: list[dict[str, Any]]) -> tuple[int, int]:
        return sum(s["input_ids"].numel() for s in buf), sum(_tiles(s) for s in buf)

    def _emit(self, i: int) -> None:
        self._ready.append(self._buffers.pop(i))

    def feed(self, sample: dict[str, Any]) -> None:
        """Place one sample (or count why it is skipped); full buffers become ready."""
        cfg = self.config
        self.stats.samples_in += 1
        s, reason = _normalise(sample)
        if s is not None and (s["input_ids"].numel() > cfg.max_tokens or _tiles(s) > cfg.max_tiles):
            if cfg.overflow == "skip":
                over_tiles = _tiles(s) > cfg.max_tiles
                s, reason = None, "over_tile_budget" if over_tiles else "over_token_budget"
            else:
                s, reason = _truncate(s, cfg), "truncation_left_nothing"
                self.stats.truncated += s is not None
        if s is None:
            self.stats.skipped[reason] += 1
            level = logging.WARNING if self.stats.skipped[reason] == 1 else logging.DEBUG
            log.log(level, "packing skipped sample %r: %s", sample.get("id"), reason)
            return
        n, t = s["input_ids"].numel(), _tiles(s)
        sizes = [self._size(b) for b in self._buffers]
        fits = [bn + n <= cfg.max_tokens and bt + t <= cfg.max_tiles for bn, bt in sizes]
        i = fits.index(True) if True in fits else len(self._buffers)  # first fit
        if i == len(self._buffers):
            self._buffers.append([])
        self._buffers[i].append(s)
        bn, bt = self._size(self._buffers[i])
        if cfg.max_tokens - bn < cfg.close_slack or bt == cfg.max_tiles:
            self._emit(i)
        if len(self._buffers) > cfg.max_buffers:
            sizes = [self._size(b)[0] for b in self._buffers]
            self._emit(sizes.index(max(sizes)))

    def flush(self) -> None:
        """End of stream: every open buffer becomes ready, in opening order."""
        while self._buffers:
            self._emit(0)

    def pop_ready(self) -> PackedBatch | None:
        """The next packed micro-batch, or None if none is ready."""
        if not self._ready:
            return None
        batch = collate(self._ready.popleft(), self.config)
        self.stats.rows += 1
        self.stats.samples_packed += len(batch.sample_ids)
        self.stats.real_tokens += batch.num_real_tokens
        self.stats.pad_tokens += batch.num_pad_tokens
        return batch

    def pack(self, samples: Iterable[dict[str, Any]], flush: bool = True) -> Iterator[PackedBatch]:
        """Feed an iterator; yield batches as they fill. Between yields the state_dict
        matches the upstream position exactly: every pulled sample has been fed."""
        for sample in samples:
            self.feed(sample)
            while (batch := self.pop_ready()) is not None:
                yield batch
        if flush:
            self.flush()
            while (batch := self.pop_ready()) is not None:
                yield batch

    @property
    def buffered_samples(self) -> int:
        """Samples held in open buffers or the ready queue."""
        return sum(len(b) for b in self._buffers) + sum(len(b) for b in self._ready)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: buffered samples (with tensors), counters."""
        stats = {**vars(self.stats), "skipped": dict(self.stats.skipped)}
        state = {"version": 1, "buffers": self._buffers, "ready": list(self._ready)}
        return copy.deepcopy({**state, "stats": stats})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != 1:
            raise ValueError(f"unsupported packing state version {state.get('version')!r}")
        state = copy.deepcopy(state)
        self._buffers = state["buffers"]
        self._ready = deque(state["ready"])
        st = state["stats"]
        self.stats = Stats(**{**st, "skipped": Counter(st["skipped"])})


def packed_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss_weight: torch.Tensor,
    denominator: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted next-token CE: sum_t ce(logits[t], labels[t+1]) * w[t+1] / denominator.

    `denominator` defaults to the weight sum of this batch; pass a global sum (over
    micro-batches and ranks) to make gradient accumulation exact. With `token` weights
    this is the token-mean CE of the same samples run unpacked.
    """
    shift_logits = logits[..., :-1, :].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[..., 1:].reshape(-1).to(shift_logits.device)
    shift_w = loss_weight[..., 1:].reshape(-1).to(shift_logits.device, torch.float32)
    ce = torch.nn.functional.cross_entropy(
        shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    denom = shift_w.sum() if denominator is None else denominator
    return (ce * shift_w).sum() / denom
