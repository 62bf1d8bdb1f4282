"""Config translation between the original InternVL layout and the native one (pure dicts).

The weights side and the reasons for each choice are in `sailvl.model.convert`'s
docstring. Here: `detect_layout` reads a config.json dict, and four functions map
configs (InternViT <-> InternVLVisionConfig, InternVL-Chat <-> InternVLConfig). Inputs
are plain dicts as read from config.json; outputs are dicts ready for `json.dump` or
for the transformers config classes (`InternVLConfig(**d)`).
"""

from __future__ import annotations

from typing import Any

from sailvl.model.convert import CHAT, INTERNVIT, NATIVE, NATIVE_VISION, OTHER

# Bookkeeping keys of a config.json that describe the file, not the model.
_DROP = {"_name_or_path", "auto_map", "transformers_version", "_commit_hash", "use_flash_attn"}
# InternVL-Chat fields with no native counterpart, carried through under this key.
EXTRAS_KEY = "internvl_chat_fields"
_CHAT_EXTRAS = {
    "template": "internvl2_5",
    "dynamic_image_size": True,
    "use_thumbnail": True,
    "min_dynamic_patch": 1,
    "max_dynamic_patch": 12,
    "pad2square": False,
    "use_backbone_lora": 0,
    "use_llm_lora": 0,
}
REMOTE_CODE_MAP = {
    "AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
    "AutoModel": "modeling_internvl_chat.InternVLChatModel",
    "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel",
}


def native_tied(native: dict[str, Any]) -> bool:
    """Whether a native config ties lm_head to the embeddings.

    transformers ties by the top-level flag, whose default is True, and `save_pretrained`
    leaves a default out of config.json: an absent flag means tied.
    """
    return bool(native.get("tie_word_embeddings", True))


def detect_layout(config: dict[str, Any]) -> str:
    """Which layout a config.json describes (see the constants in `convert`)."""
    archs = set(config.get("architectures") or [])
    mtype = config.get("model_type")
    if "llm_config" in config and "vision_config" in config:
        return CHAT  # InternVLChatModel, SAIL-VL's own remote-code models and the like
    if mtype == "intern_vit_6b" or "InternVisionModel" in archs:
        return INTERNVIT
    if mtype == "internvl" or "InternVLForConditionalGeneration" in archs:
        return NATIVE
    if mtype == "internvl_vision" or "InternVLVisionModel" in archs:
        return NATIVE_VISION
    return OTHER


def _side(value: Any, field: str) -> int:
    """A square size as one int (native configs hold [h, w])."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"vision_config.{field}: {value} is not square; InternViT needs one")
        return int(value[0])
    return int(value)


# (InternViT key, InternVLVisionConfig key, default when absent) of the vision fields
# that carry over unchanged in both directions; `_REQUIRED` has no default (KeyError).
_REQUIRED = object()
_VISION_FIELDS: list[tuple[str, str, object]] = [
    ("hidden_size", "hidden_size", _REQUIRED),
    ("num_hidden_layers", "num_hidden_layers", _REQUIRED),
    ("num_attention_heads", "num_attention_heads", _REQUIRED),
    ("intermediate_size", "intermediate_size", _REQUIRED),
    ("qkv_bias", "attention_bias", False),
    ("qk_normalization", "use_qk_norm", False),
    ("hidden_act", "hidden_act", "gelu"),
    ("layer_norm_eps", "layer_norm_eps", 1e-6),
    ("attention_dropout", "attention_dropout", 0.0),
    ("dropout", "projection_dropout", 0.0),
    ("initializer_range", "initializer_range", 0.02),
    ("initializer_factor", "layer_scale_init_value", 0.1),
]
_BOOLS = {"qkv_bias", "attention_bias", "qk_normalization", "use_qk_norm"}


def _vision_fields(src: dict[str, Any], to_native: bool) -> dict[str, Any]:
    """The `_VISION_FIELDS` of `src` under the other layout's names (flags as bools).

    One table read both ways, so a field added for one direction cannot be forgotten in
    the other; the fields whose defaults or shapes differ per side (`norm_type`, sizes,
    the native-only `hidden_dropout_prob`) stay with the callers."""
    out: dict[str, Any] = {}
    for orig, native, default in _VISION_FIELDS:
        source, target = (orig, native) if to_native else (native, orig)
        value = src[source] if default is _REQUIRED else src.get(source, default)
        out[target] = bool(value) if target in _BOOLS else value
    return out


def vision_to_native(orig: dict[str, Any], image_size: int | None = None) -> dict[str, Any]:
    """InternViT config -> InternVLVisionConfig kwargs (`image_size` overrides the tile)."""
    size = image_size or _side(orig.get("image_size", 448), "image_size")
    patch = _side(orig.get("patch_size", 14), "patch_size")
    return {
        "model_type": "internvl_vision",
        "architectures": ["InternVLVisionModel"],
        **_vision_fields(orig, to_native=True),
        "norm_type": orig.get("norm_type", "rms_norm"),
        "hidden_dropout_prob": orig.get("dropout", 0.0),
        "image_size": [size, size],
        "patch_size": [patch, patch],
        "num_channels": orig.get("num_channels", 3),
        "use_absolute_position_embeddings": True,
        "use_mean_pooling": True,  # no final LayerNorm: InternViT has none
        "use_mask_token": False,
    }


def vision_to_original(native: dict[str, Any]) -> dict[str, Any]:
    """InternVLVisionConfig dict -> InternViT config (InternVisionModel, intern_vit_6b)."""
    if not native.get("use_mean_pooling", True):
        raise ValueError(
            "vision_config.use_mean_pooling: false adds a final LayerNorm InternViT lacks"
        )
    return {
        "architectures": ["InternVisionModel"],
        "model_type": "intern_vit_6b",
        **_vision_fields(native, to_native=False),
        "norm_type": native.get("norm_type", "layer_norm"),
        "drop_path_rate": 0.0,
        "image_size": _side(native.get("image_size", 448), "image_size"),
        "patch_size": _side(native.get("patch_size", 14), "patch_size"),
        "num_channels": native.get("num_channels", 3),
        "use_flash_attn": False,  # the remote code falls back to eager without flash-attn
    }


def chat_to_native(orig: dict[str, Any], *, image_token_id: int) -> dict[str, Any]:
    """InternVL-Chat config -> InternVLConfig kwargs.

    `image_token_id` is the tokenizer's `<IMG_CONTEXT>` id: the original config does not
    hold it (InternVLChatModel sets it at run time), the native one must.
    """
    ps = orig.get("ps_version", "v1")
    if ps != "v2":
        raise ValueError(
            f"ps_version: {ps!r}; only 'v2' pixel shuffle matches the native model "
            "(v1 would load and see every image transposed)"
        )
    from sailvl.model import convert_internlm2 as L

    llm = {k: v for k, v in orig["llm_config"].items() if k not in _DROP}
    archs = llm.get("architectures") or []
    extras = {k: orig.get(k, d) for k, d in _CHAT_EXTRAS.items()}
    if L.is_internlm2(llm):
        llm = L.config_to_llama(llm)
        extras["llm_architecture"] = L.INTERNLM2
    elif archs and archs[0] not in ("Qwen2ForCausalLM", "LlamaForCausalLM"):
        raise ValueError(
            f"llm_config.architectures: {archs[0]} is not supported (Qwen2 / Llama names "
            "map one to one, InternLM2 is converted to Llama)"
        )
    llm.setdefault("model_type", "qwen2" if not archs or "Qwen2" in archs[0] else "llama")
    vision = vision_to_native(
        orig["vision_config"], image_size=orig.get("force_image_size") or None
    )
    size, patch = vision["image_size"][0], vision["patch_size"][0]
    ratio = float(orig.get("downsample_ratio", 0.5))
    return {
        "model_type": "internvl",
        "architectures": ["InternVLForConditionalGeneration"],
        "vision_config": vision,
        "text_config": llm,
        "image_token_id": int(image_token_id),
        "image_seq_length": round((size // patch * ratio) ** 2),
        "downsample_ratio": ratio,
        "projector_hidden_act": "gelu",
        "vision_feature_layer": int(orig.get("select_layer", -1)),
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": bool(llm.get("tie_word_embeddings", False)),
        EXTRAS_KEY: extras,
    }


def native_to_chat(native: dict[str, Any]) -> dict[str, Any]:
    """InternVLConfig dict -> InternVL-Chat config (InternVLChatModel, remote code)."""
    if native.get("vision_feature_select_strategy", "default") != "default":
        raise ValueError("vision_feature_select_strategy: InternVL-Chat always drops the CLS token")
    if native.get("projector_hidden_act", "gelu") != "gelu":
        raise ValueError("projector_hidden_act: InternVL-Chat's mlp1 uses GELU")
    vision = vision_to_original(native["vision_config"])
    from sailvl.model import convert_internlm2 as L

    llm = {k: v for k, v in native["text_config"].items() if k not in _DROP}
    arch = "Qwen2ForCausalLM" if llm.get("model_type", "qwen2") == "qwen2" else "LlamaForCausalLM"
    llm["architectures"] = [arch]
    llm["tie_word_embeddings"] = native_tied(native)
    extras = {**_CHAT_EXTRAS, **native.get(EXTRAS_KEY, {})}
    if extras.pop("llm_architecture", None) == L.INTERNLM2:
        llm = L.config_from_llama(llm)
    return {
        "architectures": ["InternVLChatModel"],
        "model_type": "internvl_chat",
        "auto_map": dict(REMOTE_CODE_MAP),
        "vision_config": vision,
        "llm_config": llm,
        "downsample_ratio": native.get("downsample_ratio", 0.5),
        "select_layer": native.get("vision_feature_layer", -1),
        "force_image_size": vision["image_size"],
        "ps_version": "v2",
        "torch_dtype": native.get("torch_dtype") or native.get("dtype") or "bfloat16",
        "tie_word_embeddings": llm["tie_word_embeddings"],
        **extras,
    }
