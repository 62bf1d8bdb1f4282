"""Load a SAIL-VL model and its tokenizer the way a job asks for it.

Three starting points, chosen by `ModelConfig`:

- `init_uri`: a whole SAIL-VL checkpoint (what a stage's `final/` holds), loaded with
  `InternVLForConditionalGeneration.from_pretrained`; the tokenizer comes with it.
- `vision_uri` and/or `llm_uri` (stage-1 init): the model is built on the meta device
  from the parts' own configs, the parts' weights are *assigned* into it (no second
  copy in memory), and only the projector (absent from both parts) is freshly
  initialised. The tokenizer comes from the LLM folder, gets the image specials if it
  lacks them, and the embeddings grow if it outgrew them.
- nothing: a random model of the preset (the tiny demo); the tiny tokenizer is built
  locally. 2b / 8b need a tokenizer, so they need `llm_uri` or `init_uri`.

Layouts are detected from each folder's config.json (`sailvl.model.layout`): an
original InternVL-Chat folder as `init_uri`, or an original InternViT folder as
`vision_uri`, is converted in memory. Every load is strict: a checkpoint that lacks a
weight the model has, or holds one it does not, raises `IncompleteCheckpoint` with the
names, instead of leaving a tensor randomly initialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sailvl.model.presets import PRESETS, get_preset

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(kw_only=True)
class ModelConfig:
    """Which model a job loads and how."""

    preset: str = "tiny"  # architecture: one of sailvl.model.presets.PRESETS
    init_uri: str | None = None  # whole SAIL-VL checkpoint (HF folder / URI); later stages
    vision_uri: str | None = None  # stage-1 init: InternViT checkpoint (InternVLVisionModel)
    llm_uri: str | None = None  # stage-1 init: Qwen2 checkpoint with its tokenizer
    dtype: str = "float32"  # parameter dtype: float32 | bfloat16 | float16
    attn_implementation: str = "sdpa"  # transformers attention backend name
    seed: int = 0  # random init seed (projector, or the whole model without URIs)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset: unknown {self.preset!r}; known: {sorted(PRESETS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: {self.dtype!r} is not one of {DTYPES}")
        if self.init_uri and (self.vision_uri or self.llm_uri):
            raise ValueError("init_uri: give a whole checkpoint or parts (vision/llm), not both")
        p = get_preset(self.preset)
        if not p.builds_tokenizer and not (self.init_uri or self.llm_uri):
            raise ValueError(
                f"llm_uri: preset {self.preset!r} needs init_uri or llm_uri for its tokenizer"
            )


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def load_tokenizer(path: str) -> Any:
    """AutoTokenizer from a local folder, with the ChatML and image specials ensured."""
    from transformers import AutoTokenizer

    from sailvl.model.tokenizer import ensure_special_tokens

    tok = AutoTokenizer.from_pretrained(path)
    ensure_special_tokens(tok)
    return tok


def load_pretrained(
    uri: str, *, dtype: str = "float32", attn_implementation: str = "sdpa"
) -> tuple[Any, Any]:
    """A whole SAIL-VL checkpoint and its tokenizer from a folder or URI."""
    from transformers import InternVLForConditionalGeneration

    from sailvl.model.build import fit_embeddings
    from sailvl.model.checkpoint import localize
    from sailvl.model.layout import load_native

    with localize(uri) as path:
        model = load_native(
            path, dtype=_torch_dtype(dtype), attn_implementation=attn_implementation
        )
        if not isinstance(model, InternVLForConditionalGeneration):
            raise ValueError(f"init_uri: {uri} holds a vision tower alone; give it as model.vision")
        tokenizer = load_tokenizer(path)
    fit_embeddings(model, tokenizer)
    return model, tokenizer


def _reset_projector(model: Any, seed: int) -> None:
    """Materialise the projector (left on meta) with a seeded default init."""
    import torch

    proj = model.model.multi_modal_projector
    proj.to_empty(device="cpu")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    for module in proj.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    torch.random.set_rng_state(gen_state)


def load_from_parts(config: ModelConfig) -> tuple[Any, Any]:
    """Stage-1 init: vision encoder and/or LLM from their own checkpoints.

    A part given no URI is randomly initialised from the preset (seeded).
    """
    import torch
    from transformers import (
        AutoModelForCausalLM,
        InternVLForConditionalGeneration,
        InternVLVisionModel,
    )

    from sailvl.model.build import build_config, fit_embeddings
    from sailvl.model.checkpoint import localize
    from sailvl.model.layout import check_loading, load_native
    from sailvl.model.tokenizer import build_tiny_tokenizer

    dtype = _torch_dtype(config.dtype)
    cfg = build_config(config.preset, attn_implementation=config.attn_implementation)
    torch.manual_seed(config.seed)
    if config.vision_uri:
        with localize(config.vision_uri) as path:
            vision = load_native(path, dtype=dtype, attn_implementation=config.attn_implementation)
        if not isinstance(vision, InternVLVisionModel):
            raise ValueError(
                f"vision_uri: {config.vision_uri} is a whole model, not a vision tower"
            )
        cfg.vision_config = vision.config
    else:
        vision = InternVLVisionModel(cfg.vision_config).to(dtype)
    if config.llm_uri:
        with localize(config.llm_uri) as path:
            llm, info = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=dtype,
                attn_implementation=config.attn_implementation,
                output_loading_info=True,
            )
            check_loading(info, config.llm_uri)
            tokenizer = load_tokenizer(path)
        cfg.text_config = llm.config
        cfg.tie_word_embeddings = bool(llm.config.tie_word_embeddings)
    else:
        llm = AutoModelForCausalLM.from_config(cfg.text_config).to(dtype)
        tokenizer = build_tiny_tokenizer()
    # Build the shell on meta, then move the loaded parts in as modules (their buffers,
    # e.g. RoPE's non-persistent inv_freq, come along); only the projector stays to init.
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(cfg)
    model.model.vision_tower = vision
    model.model.language_model = llm.model  # Qwen2ForCausalLM.model is the Qwen2Model
    model.lm_head = llm.lm_head
    _reset_projector(model, config.seed)
    model.to(dtype=dtype)
    if cfg.tie_word_embeddings:
        model.tie_weights()
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise ValueError(f"checkpoint parts left tensors uninitialised: {leftover[:5]}")
    fit_embeddings(model, tokenizer)
    return model, tokenizer


def model_skeleton(config: ModelConfig) -> tuple[Any, Any]:
    """(InternVLConfig, tokenizer) that `load_model(config)` would give, weights unread.

    The architecture of a run from its starting point, in any layout: what
    `sailvl export` needs to give a DeepSpeed checkpoint's tensors a config again.
    """
    from transformers import AutoConfig, InternVLConfig, InternVLVisionConfig

    from sailvl.model.build import build_config
    from sailvl.model.checkpoint import localize
    from sailvl.model.layout import native_config
    from sailvl.model.tokenizer import build_tiny_tokenizer

    if config.init_uri:
        with localize(config.init_uri) as path:
            return InternVLConfig.from_dict(native_config(path)), load_tokenizer(path)
    cfg = build_config(config.preset, attn_implementation=config.attn_implementation)
    if config.vision_uri:
        with localize(config.vision_uri) as path:
            cfg.vision_config = InternVLVisionConfig.from_dict(native_config(path))
    tokenizer = build_tiny_tokenizer()
    if config.llm_uri:
        with localize(config.llm_uri) as path:
            cfg.text_config = AutoConfig.from_pretrained(path)
            tokenizer = load_tokenizer(path)
        cfg.tie_word_embeddings = bool(cfg.text_config.tie_word_embeddings)
    return cfg, tokenizer


def load_model(config: ModelConfig) -> tuple[Any, Any]:
    """(model, tokenizer) for a job, per `ModelConfig` (see the module docstring)."""
    from sailvl.model.build import build_model
    from sailvl.model.tokenizer import build_tiny_tokenizer

    if config.init_uri:
        return load_pretrained(
            config.init_uri, dtype=config.dtype, attn_implementation=config.attn_implementation
        )
    if config.vision_uri or config.llm_uri:
        return load_from_parts(config)
    model = build_model(
        config.preset,
        seed=config.seed,
        dtype=_torch_dtype(config.dtype),
        attn_implementation=config.attn_implementation,
    )
    return model, build_tiny_tokenizer()
