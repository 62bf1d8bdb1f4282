"""Packed attention: attention that never crosses sample boundaries, on every backend.

Why a custom attention: transformers builds its packed-sequence mask from position ids
only when no 2D mask is passed and no cache exists; otherwise attention silently leaks
across the packed samples, and even when it works the mask is a dense [T, T] tensor
that makes packing slower than padding on CPU. Registering our own function under
`AttentionInterface` sidesteps both: for an implementation name that has no mask
function in `AttentionMaskInterface`, transformers builds NO mask at all and passes the
model-forward kwargs straight through to the attention function. Those kwargs carry the
packed layout: `cu_seq_lens_q` / `max_length_q` (from `PackedBatch.model_inputs()`), or
failing that `position_ids` (a new segment wherever the position does not increase by
one, transformers' own rule). With neither, the whole row is one segment.

Backends, picked per call from the query's device (`sailvl_packed`), or forced by name:

- `sailvl_packed_sdpa` (CPU, or any device): a causal SDPA per segment, outputs
  concatenated. Cost is sum(n_i^2) instead of T^2 and no mask is materialised.
- `sailvl_packed_flash` (CUDA with flash-attn installed, fp16/bf16):
  `flash_attn_varlen_func` on the [T, H, D] layout with the cu_seqlens.
- `sailvl_packed_npu` (Ascend): `torch_npu.npu_fusion_attention` with layout "TND",
  `actual_seq_qlen` / `actual_seq_kvlen` (cumulative ends) and `sparse_mode=3` with the
  2048x2048 compressed causal mask, written against torch_npu's documented API; it is
  NOT runnable on the machines this project tests on (no NPU, no CANN).

Not for padded batches: transformers drops a 2D padding mask for an implementation
without a mask function, so left padding would go unseen (a 4D mask is refused).

Non-causal callers (the InternViT vision tower passes `is_causal=False` and no packing
kwargs) get plain bidirectional attention over each image tile, so one name can be set
on the whole InternVL model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import torch.nn.functional as F

ATTENTION_NAME = "sailvl_packed"  # device-dispatching implementation


def segment_bounds(
    seq_len: int,
    cu_seq_lens: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cumulative segment boundaries [0, ..., seq_len] (int32) for a single packed row."""
    if cu_seq_lens is not None:
        cu = cu_seq_lens.to(torch.int32).reshape(-1)
    elif position_ids is not None:
        pos = position_ids.reshape(-1)
        starts = torch.nonzero(torch.diff(pos) != 1).reshape(-1) + 1
        zero = torch.zeros(1, dtype=starts.dtype, device=starts.device)
        end = torch.full((1,), pos.numel(), dtype=starts.dtype, device=starts.device)
        cu = torch.cat([zero, starts, end]).to(torch.int32)
    else:
        cu = torch.tensor([0, seq_len], dtype=torch.int32)
    if int(cu[0]) != 0 or int(cu[-1]) != seq_len:
        raise ValueError(f"cu_seqlens {cu.tolist()} do not span a row of {seq_len} tokens")
    return cu


def _is_causal(module: torch.nn.Module, kwargs: dict[str, Any]) -> bool:
    flag = kwargs.get("is_causal")
    return bool(getattr(module, "is_causal", True) if flag is None else flag)


def _bounds(query: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor | None:
    """Packed boundaries for a [1, H, T, D] query, or None for a batch of separate rows."""
    cu, pos = kwargs.get("cu_seq_lens_q"), kwargs.get("position_ids")
    if query.shape[0] != 1:
        if cu is not None:
            raise ValueError("packed attention needs one packed row per micro-batch")
        return None  # ordinary batch: each row is one sequence
    return segment_bounds(query.shape[2], cu, pos)


def _no_cache(query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None) -> None:
    """Segments index queries and keys alike: a KV cache (keys longer than queries)
    would silently misalign them, so refuse it (training passes use_cache=False). A mask
    only arrives here if the caller built a 4D one; it would be ignored, so refuse it."""
    if mask is not None:
        raise ValueError("packed attention takes no attention mask: packed rows need none")
    if key.shape[2] != query.shape[2]:
        raise ValueError(
            f"packed attention got {query.shape[2]} queries but {key.shape[2]} keys: "
            "it has no KV cache; pass use_cache=False (generation: use sdpa)"
        )


def _repeat_kv(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x if x.shape[1] == heads else x.repeat_interleave(heads // x.shape[1], dim=1)


def sdpa_packed_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Per-segment SDPA. q/k/v [B, H, T, D] -> ([B, T, H, D], None); mask unused."""
    heads = query.shape[1]
    key, value = _repeat_kv(key, heads), _repeat_kv(value, heads)
    causal = _is_causal(module, kwargs) and query.shape[2] > 1
    if causal:  # one query over a cache (decoding) is plain attention: allowed
        _no_cache(query, key, attention_mask)
    cu = _bounds(query, kwargs) if causal else None
    if cu is None or cu.numel() == 2:
        out = F.scaled_dot_product_attention(
            query, key, value, dropout_p=dropout, scale=scaling, is_causal=causal
        )
    else:
        # torch.split, not slicing: the backward of a split is one concatenation, while
        # each slice's backward writes a full-size zero tensor (O(segments x T) memory).
        lens = (cu[1:] - cu[:-1]).tolist()
        parts = zip(query.split(lens, 2), key.split(lens, 2), value.split(lens, 2), strict=True)
        out = torch.cat(
            [
                F.scaled_dot_product_attention(
                    q, k, v, dropout_p=dropout, scale=scaling, is_causal=True
                )
                for q, k, v in parts
            ],
            dim=2,
        )
    return out.transpose(1, 2).contiguous(), None


def flash_packed_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """flash-attn varlen over the packed row (CUDA, fp16/bf16; GQA handled by the kernel)."""
    from flash_attn import flash_attn_varlen_func

    b, _, t, _ = query.shape
    _no_cache(query, key, attention_mask)
    causal = _is_causal(module, kwargs) and t > 1
    cu = _bounds(query, kwargs) if causal else None
    if cu is None:  # a batch of independent rows: each row is one segment
        cu = torch.arange(0, (b + 1) * t, t, dtype=torch.int32)
    cu = cu.to(query.device, torch.int32)
    max_len = int((cu[1:] - cu[:-1]).max())
    q, k, v = (x.transpose(1, 2).reshape(-1, x.shape[1], x.shape[3]) for x in (query, key, value))
    out = flash_attn_varlen_func(
        q, k, v, cu, cu, max_len, max_len, dropout_p=dropout, softmax_scale=scaling, causal=causal
    )
    return out.reshape(b, t, out.shape[1], out.shape[2]), None


_NPU_CAUSAL_MASK: dict[torch.device, torch.Tensor] = {}


def npu_packed_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Ascend fused attention with actual sequence lengths (untested here: no NPU).

    torch_npu docs: layout "TND" takes [T, N, D]; `actual_seq_qlen` / `actual_seq_kvlen`
    are the cumulative segment ends (cu_seqlens[1:]) as a host list; `sparse_mode=3`
    (right-down causal) requires the compressed 2048x2048 upper-triangular bool mask.
    """
    import torch_npu

    b, heads, t, d = query.shape
    _no_cache(query, key, attention_mask)
    causal = _is_causal(module, kwargs) and t > 1
    cu = _bounds(query, kwargs) if causal else None
    if cu is None:
        cu = torch.arange(0, (b + 1) * t, t, dtype=torch.int32)
    ends = [int(x) for x in cu[1:].tolist()]
    q, k, v = (x.transpose(1, 2).reshape(-1, x.shape[1], d) for x in (query, key, value))
    mask = None
    if causal:
        if query.device not in _NPU_CAUSAL_MASK:
            ones = torch.ones(2048, 2048, dtype=torch.bool, device=query.device)
            _NPU_CAUSAL_MASK[query.device] = torch.triu(ones, diagonal=1)
        mask = _NPU_CAUSAL_MASK[query.device]
    out = torch_npu.npu_fusion_attention(
        q,
        k,
        v,
        heads,
        input_layout="TND",
        atten_mask=mask,
        scale=scaling if scaling is not None else d**-0.5,
        keep_prob=1.0 - dropout,
        actual_seq_qlen=ends,
        actual_seq_kvlen=ends,
        sparse_mode=3 if causal else 0,
    )[0]
    return out.reshape(b, t, heads, d), None


def flash_available() -> bool:
    """flash-attn is installed (it is only ever usable on CUDA)."""
    try:
        return importlib.util.find_spec("flash_attn") is not None
    except (ImportError, ValueError):  # a broken install, or a module without a spec
        return False


def packed_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Dispatch on the query's device: npu -> fused, cuda + flash-attn -> varlen, else SDPA."""
    kind = query.device.type
    if kind == "npu":
        return npu_packed_forward(module, query, key, value, attention_mask, **kwargs)
    half = query.dtype in (torch.float16, torch.bfloat16)
    if kind == "cuda" and half and flash_available():
        return flash_packed_forward(module, query, key, value, attention_mask, **kwargs)
    return sdpa_packed_forward(module, query, key, value, attention_mask, **kwargs)


BACKENDS = {
    ATTENTION_NAME: packed_attention_forward,
    f"{ATTENTION_NAME}_sdpa": sdpa_packed_forward,
    f"{ATTENTION_NAME}_flash": flash_packed_forward,
    f"{ATTENTION_NAME}_npu": npu_packed_forward,
}


def register_packed_attention() -> list[str]:
    """Register every backend with transformers' AttentionInterface (idempotent)."""
    from transformers import AttentionInterface

    for name, fn in BACKENDS.items():
        AttentionInterface.register(name, fn)
    return list(BACKENDS)


def use_packed_attention(model: Any, name: str = ATTENTION_NAME) -> Any:
    """Register the backends and switch `model` (all sub-models) to `name`."""
    if name not in BACKENDS:
        raise ValueError(f"name must be one of {sorted(BACKENDS)}, got {name!r}")
    register_packed_attention()
    model.set_attn_implementation(name)
    return model
