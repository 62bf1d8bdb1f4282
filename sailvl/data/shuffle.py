"""Pure ordering functions of the streaming reader: shuffles, partition, mixing.

Everything here is a pure function of integers (seed, epoch, position, ...), which is
what makes mid-epoch resume exact: the reader's state is a position, and the sample at
any position is recomputed, never replayed from history.

Epoch order of one source (`epoch_order`): the shards are permuted (seeded by
`(seed, epoch)`), their samples concatenated in that order, and the concatenation is cut
into blocks of `block_size` samples, each permuted on its own (seeded by
`(seed, epoch, block)`). Blocks keep reads local (a consumer touches only the shards
overlapping its blocks) while mixing samples across neighbouring shards. Algorithms are
chosen by name (`SHUFFLES`): "none", "shards" (shard order only), "block".

Partition (`consumer_range`): the epoch sequence is cut into `C` contiguous ranges,
one per consumer (rank x dataloader worker); lengths differ by at most one, so every
sample is read exactly once per epoch and ranks stay balanced.

Mixing (`mix_choices`): position k of a consumer draws its source from the weights with
an RNG seeded by `(seed, consumer, k // MIX_CHUNK)`; the counts per source before any
position follow by re-drawing the chunks (cheap: vectorised, ~4k positions per draw).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MIX_CHUNK = 4096
_TAG_SHARDS, _TAG_BLOCK, _TAG_MIX = 1, 2, 3


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _shard_perm(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    return _rng(seed, epoch, _TAG_SHARDS).permutation(n) if shuffle else np.arange(n)


def _concat_to_global(sizes: np.ndarray, perm: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Map positions in the permuted-shard concatenation to manifest-order sample ids."""
    base = np.concatenate([[0], np.cumsum(sizes)])  # manifest-order offsets
    psizes = sizes[perm]
    pbase = np.concatenate([[0], np.cumsum(psizes)])
    j = np.searchsorted(pbase, q, side="right") - 1
    return base[perm[j]] + (q - pbase[j])


def order_none(
    sizes: np.ndarray, seed: int, epoch: int, block: int, lo: int, hi: int
) -> np.ndarray:
    return np.arange(lo, hi, dtype=np.int64)


def order_shards(
    sizes: np.ndarray, seed: int, epoch: int, block: int, lo: int, hi: int
) -> np.ndarray:
    perm = _shard_perm(len(sizes), seed, epoch, True)
    return _concat_to_global(sizes, perm, np.arange(lo, hi, dtype=np.int64))


def order_block(
    sizes: np.ndarray, seed: int, epoch: int, block: int, lo: int, hi: int
) -> np.ndarray:
    n = int(sizes.sum())
    perm = _shard_perm(len(sizes), seed, epoch, True)
    q = np.empty(hi - lo, dtype=np.int64)
    pos = lo
    while pos < hi:
        b = pos // block
        b_lo, b_hi = b * block, min(n, (b + 1) * block)
        inner = _rng(seed, epoch, _TAG_BLOCK, b).permutation(b_hi - b_lo)
        take_hi = min(hi, b_hi)
        q[pos - lo : take_hi - lo] = b_lo + inner[pos - b_lo : take_hi - b_lo]
        pos = take_hi
    return _concat_to_global(sizes, perm, q)


SHUFFLES: dict[str, Callable[[np.ndarray, int, int, int, int, int], np.ndarray]] = {
    "none": order_none,
    "shards": order_shards,
    "block": order_block,
}


def epoch_order(
    sizes: Sequence[int],
    *,
    seed: int,
    epoch: int,
    algo: str = "block",
    block_size: int = 1 << 16,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Manifest-order sample ids at positions [start, stop) of `epoch`'s sequence."""
    if algo not in SHUFFLES:
        raise ValueError(f"shuffle: unknown algorithm {algo!r} (have {sorted(SHUFFLES)})")
    arr = np.asarray(sizes, dtype=np.int64)
    n = int(arr.sum())
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ValueError(f"positions [{start}, {stop}) outside the epoch of {n} samples")
    return SHUFFLES[algo](arr, seed, epoch, block_size, start, stop)


def consumer_range(n: int, consumer: int, num_consumers: int) -> tuple[int, int]:
    """The contiguous [start, stop) of an n-sample epoch that `consumer` reads."""
    return consumer * n // num_consumers, (consumer + 1) * n // num_consumers


def locate(sizes: Sequence[int], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Manifest-order sample ids -> (shard index, row within shard)."""
    base = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])
    shard = np.searchsorted(base, ids, side="right") - 1
    return shard, ids - base[shard]


def _mix_chunk(weights: np.ndarray, seed: int, consumer: int, chunk: int) -> np.ndarray:
    if len(weights) == 1:
        return np.zeros(MIX_CHUNK, dtype=np.int64)
    return _rng(seed, consumer, _TAG_MIX, chunk).choice(len(weights), size=MIX_CHUNK, p=weights)


def mix_choices(
    weights: Sequence[float], *, seed: int, consumer: int, start: int, stop: int
) -> np.ndarray:
    """Source index drawn for each position in [start, stop) of a consumer."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    out = np.empty(stop - start, dtype=np.int64)
    pos = start
    while pos < stop:
        c = pos // MIX_CHUNK
        hi = min(stop, (c + 1) * MIX_CHUNK)
        out[pos - start : hi - start] = _mix_chunk(w, seed, consumer, c)[
            pos - c * MIX_CHUNK : hi - c * MIX_CHUNK
        ]
        pos = hi
    return out


def mix_counts(weights: Sequence[float], *, seed: int, consumer: int, position: int) -> np.ndarray:
    """How many of positions [0, position) drew each source."""
    counts = np.zeros(len(weights), dtype=np.int64)
    for lo in range(0, position, MIX_CHUNK * 16):
        hi = min(position, lo + MIX_CHUNK * 16)
        counts += np.bincount(
            mix_choices(weights, seed=seed, consumer=consumer, start=lo, stop=hi),
            minlength=len(weights),
        )
    return counts
