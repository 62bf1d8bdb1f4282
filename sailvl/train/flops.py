"""Training FLOPs and the MFU estimate (pure).

The formula, per module m with N_m matmul parameters processing T_m tokens:

    forward            2 * N_m * T_m                   (one multiply-add per weight)
    backward, inputs   2 * N_m * T_m                   (dL/dx = W^T dL/dy)
    backward, weights  2 * N_m * T_m                   (dL/dW = dL/dy x^T)

so a trainable module costs 6 N T; a FROZEN module that gradients must flow through
(it sits after a trainable one: the LLM in the projector-only stage) costs 4 N T, as
it skips only the weight gradients; a frozen module before every trainable one (the
vision tower in pretrain-alignment) runs forward only, 2 N T. The module order is
vision -> projector -> llm.

Attention adds, per layer of width d, 4 d c FLOPs forward for a token attending to c
keys (QK^T and AV). Packed causal segments of n tokens sum to c = n(n+1)/2 per segment,
so the LLM's forward attention term is 2 d L sum(n_i (n_i + 1)); a vision tile of p
patches is bidirectional: 4 d L p^2. Attention has no weights, so its multiplier is 3
(forward + both backward matmuls) where the module needs a backward, else 1.

Token counts: the LLM sees every packed token; the projector sees `tokens_per_tile`
tokens per tile; the vision tower sees `patches_per_tile` patches (4x the tokens, the
2x2 pixel shuffle comes after it, plus one class token). Input embeddings are a lookup,
not a matmul, and are excluded from N; the LM head is included (tied or not).

    MFU = step FLOPs / (step seconds x devices x peak FLOP/s per device)

Padding tokens are counted as work done only in `padded` accounting; the benchmark
reports useful (real-token) FLOPs, which is what MFU should measure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ORDER = ("vision", "projector", "llm")


@dataclass(frozen=True, kw_only=True)
class ArchCounts:
    """The shape numbers the formula needs (from a preset or a built model)."""

    vision_params: int  # matmul parameters of the vision tower
    vision_layers: int  # ViT blocks
    vision_width: int  # ViT hidden size
    patches_per_tile: int  # tokens the ViT sees per tile (patches + class token)
    projector_params: int  # projector matmul parameters
    tokens_per_tile: int  # visual tokens per tile after pixel shuffle
    llm_params: int  # LLM matmul parameters (blocks + LM head, no input embedding)
    llm_layers: int  # decoder blocks
    llm_width: int  # attention width (heads x head dim)


def multipliers(trainable: Iterable[str]) -> dict[str, int]:
    """3 (trainable), 2 (frozen, gradients pass through) or 1 (forward only) per module,
    in units of the forward cost."""
    policy = set(trainable)
    out, upstream_trains = {}, False
    for m in ORDER:
        if m in policy:
            out[m] = 3
        else:
            out[m] = 2 if upstream_trains else 1
        upstream_trains = upstream_trains or m in policy
    return out


def step_flops(
    arch: ArchCounts, trainable: Iterable[str], segment_lengths: Iterable[int], tiles: int
) -> float:
    """Training FLOPs of one step over packed segments of the given lengths and `tiles`
    image tiles (all micro-batches and ranks together)."""
    mult = multipliers(trainable)
    lengths = list(segment_lengths)
    llm_tokens = sum(lengths)
    attn_mult = {m: 3 if k > 1 else 1 for m, k in mult.items()}
    vision = 2 * arch.vision_params * arch.patches_per_tile * tiles * mult["vision"]
    vision += (
        4 * arch.vision_width * arch.vision_layers * arch.patches_per_tile**2 * tiles
    ) * attn_mult["vision"]
    projector = 2 * arch.projector_params * arch.tokens_per_tile * tiles * mult["projector"]
    llm = 2 * arch.llm_params * llm_tokens * mult["llm"]
    llm += (
        2
        * arch.llm_width
        * arch.llm_layers
        * sum(n * (n + 1) for n in lengths)
        * (attn_mult["llm"])
    )
    return float(vision + projector + llm)


def mfu(flops: float, seconds: float, devices: int, peak_flops_per_device: float | None) -> float:
    """Model FLOPs utilisation in [0, 1+]; 0 when the peak is unknown or time is 0."""
    if not peak_flops_per_device or seconds <= 0 or devices < 1:
        return 0.0
    return flops / (seconds * devices * peak_flops_per_device)


def arch_counts(model: object) -> ArchCounts:
    """ArchCounts of a built InternVL model (parameter counts read from the model)."""
    cfg = model.config  # type: ignore[attr-defined]
    vc, tc = cfg.vision_config, cfg.text_config

    def count(prefix: str, skip: tuple[str, ...] = ()) -> int:
        return sum(
            p.numel()
            for n, p in model.named_parameters()  # type: ignore[attr-defined]
            if n.startswith(prefix) and not any(s in n for s in skip)
        )

    side = vc.image_size[0] // vc.patch_size[0]
    tokens = round((side * cfg.downsample_ratio) ** 2)
    head = cfg.text_config.vocab_size * tc.hidden_size  # LM head matmul (tied or not)
    return ArchCounts(
        vision_params=count("model.vision_tower."),
        vision_layers=vc.num_hidden_layers,
        vision_width=vc.hidden_size,
        patches_per_tile=side * side + 1,
        projector_params=count("model.multi_modal_projector."),
        tokens_per_tile=tokens,
        llm_params=count("model.language_model.", skip=("embed_tokens",)) + head,
        llm_layers=tc.num_hidden_layers,
        llm_width=tc.num_attention_heads * (tc.hidden_size // tc.num_attention_heads),
    )
