"""InternLM2 LLM weights inside InternVL-Chat checkpoints <-> Llama (pure).

InternVL2-8B (the paper's captioner base) and other InternVL checkpoints pair InternViT
with InternLM2, which transformers has no class for; its architecture is Llama's with
other names and one fused projection, so the native model holds it as a Llama text
model (as transformers' own InternVL conversion does).

Names: `tok_embeddings` -> `embed_tokens`, `attention.wo` -> `self_attn.o_proj`,
`feed_forward.w1 / w3 / w2` -> `mlp.gate_proj / up_proj / down_proj`,
`attention_norm` / `ffn_norm` -> `input_layernorm` / `post_attention_layernorm`,
`output` -> `lm_head`.

The fused `attention.wqkv` is grouped per key/value head, not q | k | v: InternLM2's
forward views its output as (kv_heads, groups + 2, head_dim) and takes the first
`groups` slots as that kv head's queries, then one key, then one value. Splitting
views the weight rows the same way; fusing stacks them back, so a round trip is exact.
"""

from __future__ import annotations

import re
from typing import Any

from sailvl.model.convert import _regex, _rename

INTERNLM2 = "InternLM2ForCausalLM"
_RULES: list[tuple[str, str]] = [
    ("model.tok_embeddings.weight", "model.embed_tokens.weight"),
    ("model.norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("model.layers.{i}.attention.wo.weight", "model.layers.{i}.self_attn.o_proj.weight"),
    ("model.layers.{i}.feed_forward.w1.weight", "model.layers.{i}.mlp.gate_proj.weight"),
    ("model.layers.{i}.feed_forward.w3.weight", "model.layers.{i}.mlp.up_proj.weight"),
    ("model.layers.{i}.feed_forward.w2.weight", "model.layers.{i}.mlp.down_proj.weight"),
    ("model.layers.{i}.attention_norm.weight", "model.layers.{i}.input_layernorm.weight"),
    ("model.layers.{i}.ffn_norm.weight", "model.layers.{i}.post_attention_layernorm.weight"),
]
_WQKV = ("model.layers.{i}.attention.wqkv.weight", "model.layers.{i}.self_attn.{x}_proj.weight")
_TO_LLAMA = [(_regex(o), n) for o, n in _RULES]
_FROM_LLAMA = [(_regex(n), o) for o, n in _RULES]
_WQKV_O, _WQKV_N = _regex(_WQKV[0]), _regex(_WQKV[1])
# config keys shared verbatim by InternLM2Config and LlamaConfig
_SHARED = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "vocab_size", "rms_norm_eps", "rope_theta", "rope_scaling",
    "max_position_embeddings", "tie_word_embeddings", "bos_token_id", "eos_token_id",
    "pad_token_id", "hidden_act", "initializer_range", "torch_dtype",
)  # fmt: skip


def is_internlm2(llm_config: dict[str, Any]) -> bool:
    return (llm_config.get("architectures") or [""])[0] == INTERNLM2


def _heads(cfg: dict[str, Any]) -> tuple[int, int, int]:
    heads = int(cfg["num_attention_heads"])
    kv = int(cfg.get("num_key_value_heads") or heads)
    return heads, kv, int(cfg["hidden_size"]) // heads


def to_llama(state: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """InternLM2 tensors (names inside the LLM) -> Llama names; wqkv split per kv group."""
    heads, kv, d = _heads(cfg)
    groups = heads // kv

    def split(m: re.Match[str], t: Any) -> dict[str, Any]:
        w = t.view(kv, groups + 2, d, t.shape[-1])
        parts = {"q": w[:, :groups], "k": w[:, -2], "v": w[:, -1]}
        return {
            _WQKV[1].format(i=m["i"], x=x): part.reshape(-1, t.shape[-1]).clone()
            for x, part in parts.items()
        }

    return _rename(state, _TO_LLAMA, "InternLM2", _WQKV_O, split)


def from_llama(state: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Llama tensors -> InternLM2 names; q, k, v fused back into per-group wqkv."""
    import torch

    heads, kv, d = _heads(cfg)
    parts: dict[str, dict[str, Any]] = {}

    def gather(m: re.Match[str], t: Any) -> dict[str, Any]:
        parts.setdefault(m["i"], {})[m["x"]] = t
        return {}

    out = _rename(state, _FROM_LLAMA, "Llama (InternLM2 export)", _WQKV_N, gather)
    for i, p in parts.items():
        hid = p["q"].shape[-1]
        q = p["q"].view(kv, heads // kv, d, hid)
        k, v = p["k"].view(kv, 1, d, hid), p["v"].view(kv, 1, d, hid)
        out[_WQKV[0].format(i=i)] = torch.cat([q, k, v], 1).reshape(-1, hid)
    return out


def config_to_llama(cfg: dict[str, Any]) -> dict[str, Any]:
    """InternLM2Config dict -> LlamaConfig dict (InternLM2 with bias is refused)."""
    if cfg.get("bias", False):
        raise ValueError("llm_config.bias: InternLM2 with biases is not converted")
    out = {k: cfg[k] for k in _SHARED if k in cfg}
    out.update(model_type="llama", architectures=["LlamaForCausalLM"])
    out.update(attention_bias=False, mlp_bias=False)
    return out


def config_from_llama(cfg: dict[str, Any]) -> dict[str, Any]:
    """LlamaConfig dict -> InternLM2Config dict (remote code: InternLM2ForCausalLM)."""
    out = {k: cfg[k] for k in _SHARED if k in cfg}
    out.update(model_type="internlm2", architectures=[INTERNLM2], bias=False)
    out["attn_implementation"] = "eager"
    out["auto_map"] = {
        "AutoConfig": "configuration_internlm2.InternLM2Config",
        "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
        "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM",
    }
    return out
