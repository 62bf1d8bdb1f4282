"""Checkpoint layouts: the original InternVL (remote-code) layout <-> transformers' native one.

The field publishes SAIL-VL's starting points in the layout of InternVL's own code
(`trust_remote_code` folders): InternVL-Chat checkpoints (`vision_model.*`, `mlp1.*`,
`language_model.*`, a config with `vision_config` / `llm_config`) and InternViT alone
(`embeddings.*`, `encoder.layers.*`, model_type `intern_vit_6b`). The suite runs
transformers' native InternVL classes, whose names differ; this module maps names,
tensors and configs between the two, both ways, as pure functions over dicts (no I/O;
folders are `sailvl.model.layout`'s job).

Names. Everything but the vision blocks is a prefix swap (`_CHAT_PREFIXES`). The
InternViT blocks are renamed by `_VISION_RULES`, one table read in both directions: each
row is a pair of name templates where `{i}` is a layer index and `{p}` weight | bias. The
one structural difference is attention: the original fuses query, key and value into
one `attn.qkv` Linear (output rows q | k | v, the order its forward unbinds them in);
the native model has `q_proj`, `k_proj`, `v_proj`. Splitting takes equal thirds of the
rows; fusing concatenates them back, so a round trip is bit-exact. Layer scales `ls1` /
`ls2` are `lambda_1` / `lambda_2`, `norm1` / `norm2` are `layernorm_before` / `_after`.
A name no rule knows raises (listing every such name) instead of being dropped.

transformers ships the InternVL conversion as a script outside the wheel; the installed
release maintains only `InternVLForConditionalGeneration._checkpoint_conversion_mapping`
(its own legacy top-level names), which `native_names` applies. The rest is here.

Configs. InternViT fields map onto `InternVLVisionConfig` (`qkv_bias` ->
`attention_bias`, `qk_normalization` -> `use_qk_norm`, `initializer_factor` ->
`layer_scale_init_value`, square sizes -> `[s, s]`); no final LayerNorm
(`use_mean_pooling: true`), as InternViT has none. The chat config's `llm_config` becomes
`text_config`, `select_layer` -> `vision_feature_layer`, `force_image_size` overrides the
tile size as InternVLChatModel does. Only `ps_version: v2` is accepted: the native pixel
shuffle is v2, and a v1 checkpoint would load without error and see transposed images.
Fields the native config has no place for (template, dynamic tiling limits, ...) travel
in `internvl_chat_fields` so an export gives them back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

NATIVE = "native"  # InternVLForConditionalGeneration
NATIVE_VISION = "native-vision"  # InternVLVisionModel alone
CHAT = "internvl-chat"  # original InternVLChatModel (also SAIL-VL's published layout)
INTERNVIT = "internvit"  # original InternVisionModel alone
OTHER = "other"  # anything else (a Qwen2 folder): loaded as it is

# (original, native) name templates inside the vision tower; `{i}` layer, `{p}` weight|bias.
_VISION_RULES: list[tuple[str, str]] = [
    ("embeddings.class_embedding", "embeddings.cls_token"),
    ("embeddings.position_embedding", "embeddings.position_embeddings"),
    ("embeddings.patch_embedding.{p}", "embeddings.patch_embeddings.projection.{p}"),
    ("encoder.layers.{i}.attn.proj.{p}", "encoder.layer.{i}.attention.projection_layer.{p}"),
    ("encoder.layers.{i}.attn.q_norm.weight", "encoder.layer.{i}.attention.q_norm.weight"),
    ("encoder.layers.{i}.attn.k_norm.weight", "encoder.layer.{i}.attention.k_norm.weight"),
    ("encoder.layers.{i}.ls1", "encoder.layer.{i}.lambda_1"),
    ("encoder.layers.{i}.ls2", "encoder.layer.{i}.lambda_2"),
    ("encoder.layers.{i}.norm1.{p}", "encoder.layer.{i}.layernorm_before.{p}"),
    ("encoder.layers.{i}.norm2.{p}", "encoder.layer.{i}.layernorm_after.{p}"),
    ("encoder.layers.{i}.mlp.fc1.{p}", "encoder.layer.{i}.mlp.fc1.{p}"),
    ("encoder.layers.{i}.mlp.fc2.{p}", "encoder.layer.{i}.mlp.fc2.{p}"),
]
_QKV = ("encoder.layers.{i}.attn.qkv.{p}", "encoder.layer.{i}.attention.{x}_proj.{p}")

# (original, native) prefixes of an InternVL-Chat checkpoint; mlp1 is
# Sequential(LayerNorm, Linear, GELU, Linear): indices 0, 1, 3 hold weights.
_CHAT_PREFIXES: list[tuple[str, str]] = [
    ("vision_model.", "model.vision_tower."),
    ("mlp1.0.", "model.multi_modal_projector.layer_norm."),
    ("mlp1.1.", "model.multi_modal_projector.linear_1."),
    ("mlp1.3.", "model.multi_modal_projector.linear_2."),
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
]


def _regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    pattern = pattern.replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    pattern = pattern.replace(r"\{x\}", r"(?P<x>[qkv])")
    return re.compile(pattern + r"\Z")


_TO_NATIVE = [(_regex(o), n) for o, n in _VISION_RULES]
_TO_ORIGINAL = [(_regex(n), o) for o, n in _VISION_RULES]
_QKV_ORIGINAL, _QKV_NATIVE = _regex(_QKV[0]), _regex(_QKV[1])


def _unknown(names: list[str], where: str) -> None:
    if names:
        raise ValueError(f"{where}: {len(names)} weight name(s) no mapping knows: {sorted(names)}")


def _rename(
    state: dict[str, Any],
    table: list[tuple[re.Pattern[str], str]],
    where: str,
    fused: re.Pattern[str],
    on_fused: Callable[[re.Match[str], Any], dict[str, Any]],
    prefix: str = "",
) -> dict[str, Any]:
    """Rename every tensor of `state` by the first `(regex, template)` row of `table` that
    matches its name (`prefix` prepended), keeping the state's order.

    A name `fused` matches goes to `on_fused` instead, which returns the entries to put in
    its place (split parts; none while it gathers parts to fuse after the loop). Names
    no rule knows are collected and raised together (`_unknown`, naming `where`), so a
    layout mismatch lists every stray weight instead of silently dropping them."""
    out: dict[str, Any] = {}
    unknown = []
    for name, tensor in state.items():
        m = fused.match(name)
        if m:
            out.update(on_fused(m, tensor))
            continue
        for rx, template in table:
            m = rx.match(name)
            if m:
                out[prefix + template.format(**m.groupdict())] = tensor
                break
        else:
            unknown.append(name)
    _unknown(unknown, where)
    return out


def _swap_prefixes(
    state: dict[str, Any], pairs: list[tuple[str, str]], skip: str, where: str
) -> dict[str, Any]:
    """Every tensor of `state` not under `skip` (the vision tower, renamed by its own
    table) with the first `(old, new)` prefix of `pairs` it starts with swapped; names
    no pair knows raise together (`_unknown`, naming `where`)."""
    out: dict[str, Any] = {}
    unknown = []
    for name, tensor in state.items():
        if name.startswith(skip):
            continue
        for old, new in pairs:
            if name.startswith(old):
                out[new + name[len(old) :]] = tensor
                break
        else:
            unknown.append(name)
    _unknown(unknown, where)
    return out


def vision_to_native(state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """InternViT tensors (names after `prefix`) -> InternVLVisionModel names; qkv split."""

    def split(m: re.Match[str], tensor: Any) -> dict[str, Any]:
        q, k, v = tensor.chunk(3, dim=0)
        return {
            prefix + _QKV[1].format(i=m["i"], p=m["p"], x=x): part.clone()
            for x, part in zip("qkv", (q, k, v), strict=True)
        }

    return _rename(state, _TO_NATIVE, "InternViT", _QKV_ORIGINAL, split, prefix)


def vision_to_original(state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """InternVLVisionModel tensors -> InternViT names (`prefix` prepended); qkv fused."""
    import torch

    parts: dict[tuple[str, str], dict[str, Any]] = {}

    def gather(m: re.Match[str], tensor: Any) -> dict[str, Any]:
        parts.setdefault((m["i"], m["p"]), {})[m["x"]] = tensor
        return {}

    out = _rename(state, _TO_ORIGINAL, "InternVL vision tower", _QKV_NATIVE, gather, prefix)
    for (i, p), qkv in parts.items():
        if set(qkv) != {"q", "k", "v"}:
            raise ValueError(f"vision layer {i}: attention {p} has only {sorted(qkv)} of q, k, v")
        out[prefix + _QKV[0].format(i=i, p=p)] = torch.cat([qkv["q"], qkv["k"], qkv["v"]], 0)
    return out


def native_names(state: dict[str, Any]) -> dict[str, Any]:
    """A native InternVL state dict as saved (legacy top-level names) -> module names.

    Uses the mapping the installed transformers maintains for exactly this
    (`InternVLForConditionalGeneration._checkpoint_conversion_mapping`).
    """
    from transformers import InternVLForConditionalGeneration

    mapping = InternVLForConditionalGeneration._checkpoint_conversion_mapping
    out = {}
    for name, tensor in state.items():
        for pattern, repl in mapping.items():
            new = re.sub(pattern, repl, name)
            if new != name:
                name = new
                break
        out[name] = tensor
    return out


def _llm_part(state: dict[str, Any], fn: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """`state` with its `language_model.*` tensors passed through `fn(llm_state, cfg)`."""
    pre = "language_model."
    llm = {k[len(pre) :]: v for k, v in state.items() if k.startswith(pre)}
    rest = {k: v for k, v in state.items() if not k.startswith(pre)}
    return rest | {pre + k: v for k, v in fn(llm, cfg).items()}


def chat_to_native(
    state: dict[str, Any], llm_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """InternVL-Chat tensors -> InternVLForConditionalGeneration module names.

    An InternLM2 LLM (`llm_config` names it) becomes a Llama one first.
    """
    from sailvl.model import convert_internlm2 as L

    if llm_config and L.is_internlm2(llm_config):
        state = _llm_part(state, L.to_llama, llm_config)
    vision = {
        k[len("vision_model.") :]: v for k, v in state.items() if k.startswith("vision_model.")
    }
    out = vision_to_native(vision, prefix="model.vision_tower.")
    out.update(_swap_prefixes(state, _CHAT_PREFIXES[1:], "vision_model.", "InternVL-Chat"))
    return out


def native_to_chat(
    state: dict[str, Any], *, tied: bool, llm_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Native module names (see `native_names`) -> InternVL-Chat names; qkv fused; the
    LLM back to InternLM2's names when the original `llm_config` names InternLM2.

    With tied embeddings the LM head is written out anyway (a copy of the embeddings):
    InternVLChatModel's `state_dict()` has it, and a server reading the folder weight by
    weight then finds every name it asks for.
    """
    state = dict(state)
    if tied and "lm_head.weight" not in state:
        state["lm_head.weight"] = state["model.language_model.embed_tokens.weight"].clone()
    pre = "model.vision_tower."
    vision = {k[len(pre) :]: v for k, v in state.items() if k.startswith(pre)}
    out = vision_to_original(vision, prefix="vision_model.")
    back = [(native, orig) for orig, native in _CHAT_PREFIXES[1:]]
    out.update(_swap_prefixes(state, back, pre, "InternVL (native)"))
    from sailvl.model import convert_internlm2 as L

    if llm_config and L.is_internlm2(llm_config):
        out = _llm_part(out, L.from_llama, llm_config)
    return out
