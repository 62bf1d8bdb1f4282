"""Build SAIL-VL from a preset with transformers' native InternVL classes.

The model is `transformers.InternVLForConditionalGeneration`: `model.vision_tower`
(InternViT), `model.multi_modal_projector` (LayerNorm, Linear, GELU, Linear over the 2x2
pixel-shuffled features), `model.language_model` (Qwen2) and `lm_head`. Its forward is

    model(input_ids, pixel_values=None, attention_mask=None, position_ids=None,
          labels=None, use_cache=..., ...) -> .loss, .logits

where `pixel_values` is (total tiles in the batch, 3, tile, tile) and `input_ids` holds
exactly `tokens_per_tile` `<IMG_CONTEXT>` ids per tile, in the same order: the model
scatters the projected tile features into those positions (masked_scatter), so a count
mismatch raises. `labels` are aligned with `input_ids` (the shift happens inside) and
-100 marks positions without loss.

`tie_word_embeddings` is set on the top-level InternVL config, not only on the text
config: transformers ties lm_head by the top-level flag, and Qwen2.5-7B is untied (the
difference between 7.40B and the paper's 7.95B parameters).

Building on `device="meta"` allocates nothing: that is how the 2b / 8b parameter counts
are checked on a laptop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sailvl.model.presets import ModelPreset, get_preset

if TYPE_CHECKING:
    import torch
    from transformers import InternVLConfig, InternVLForConditionalGeneration

# Id of <IMG_CONTEXT> in Qwen2.5's tokenizer once <img>, </img>, <IMG_CONTEXT> are
# appended (151665..151667), as in the converted InternVL checkpoints.
QWEN25_IMG_CONTEXT_ID = 151667
# Id of <IMG_CONTEXT> in the tiny byte-level tokenizer (sailvl.model.tokenizer).
TINY_IMG_CONTEXT_ID = 261


def default_image_token_id(preset: ModelPreset) -> int:
    """The `<IMG_CONTEXT>` id the preset's tokenizer assigns."""
    return TINY_IMG_CONTEXT_ID if preset.builds_tokenizer else QWEN25_IMG_CONTEXT_ID


def build_config(
    preset: ModelPreset | str,
    *,
    image_token_id: int | None = None,
    attn_implementation: str = "sdpa",
) -> InternVLConfig:
    """The transformers InternVLConfig for a preset (no weights)."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    p = get_preset(preset) if isinstance(preset, str) else preset
    v, t = p.vision, p.text
    vision = InternVLVisionConfig(
        hidden_size=v.hidden_size,
        num_hidden_layers=v.num_hidden_layers,
        num_attention_heads=v.num_attention_heads,
        intermediate_size=v.intermediate_size,
        attention_bias=v.attention_bias,
        image_size=[p.tile_size, p.tile_size],
        patch_size=[p.patch_size, p.patch_size],
    )
    text = Qwen2Config(
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads,
        vocab_size=t.vocab_size,
        max_position_embeddings=t.max_position_embeddings,
        rope_theta=t.rope_theta,
        rms_norm_eps=t.rms_norm_eps,
        tie_word_embeddings=t.tie_word_embeddings,
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=default_image_token_id(p) if image_token_id is None else image_token_id,
        image_seq_length=p.tokens_per_tile,
        downsample_ratio=p.downsample_ratio,
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=t.tie_word_embeddings,
    )
    config._attn_implementation = attn_implementation
    return config


def build_model(
    preset: ModelPreset | str,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    seed: int | None = 0,
    image_token_id: int | None = None,
    attn_implementation: str = "sdpa",
) -> InternVLForConditionalGeneration:
    """A randomly initialised SAIL-VL model; `device="meta"` allocates no memory.

    `seed` makes the random init reproducible (None leaves torch's RNG alone).
    """
    import torch
    from transformers import InternVLForConditionalGeneration

    config = build_config(
        preset, image_token_id=image_token_id, attn_implementation=attn_implementation
    )
    if seed is not None and str(device) != "meta":
        torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        model = InternVLForConditionalGeneration(config)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model


def tokens_per_tile(model: Any) -> int:
    """Visual tokens per tile of a built model, read back from its config."""
    cfg = model.config
    side = cfg.vision_config.image_size[0] // cfg.vision_config.patch_size[0]
    return round((side * cfg.downsample_ratio) ** 2)


def tile_size(model: Any) -> int:
    """Tile edge in pixels of a built model."""
    return int(model.config.vision_config.image_size[0])


def fit_embeddings(model: Any, tokenizer: Any, pad_to_multiple_of: int = 64) -> bool:
    """Grow the embeddings if the tokenizer outgrew them; keep image_token_id in sync.

    Returns True if the embeddings were resized. Rows are never removed: Qwen2.5 pads
    its vocabulary past the tokenizer's length on purpose.
    """
    vocab = tokenizer.get_vocab()
    from sailvl.model.tokenizer import IMG_CONTEXT

    if IMG_CONTEXT in vocab:
        model.config.image_token_id = vocab[IMG_CONTEXT]
    if len(tokenizer) <= model.get_input_embeddings().weight.shape[0]:
        return False
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=pad_to_multiple_of)
    return True
