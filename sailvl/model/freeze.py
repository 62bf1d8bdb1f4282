"""Freeze policy: which parameters train, as a pure function of module names.

SAIL-VL's five stages train three nested sets of modules (paper Table 3):
pretrain-alignment trains the projector, pretrain-advance the vision tower and the
projector, the three SFT stages everything. A policy is a set drawn from
{"vision", "projector", "llm"}; every parameter of `InternVLForConditionalGeneration`
belongs to exactly one of them by its name prefix. A parameter whose name matches no
prefix is an error, not silently frozen: a new submodule must be classified on purpose.

Tied weights: with `tie_word_embeddings` the lm_head weight *is* the input embedding,
and `named_parameters()` lists it once (as the embedding), so it counts once, under llm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MODULES = ("vision", "projector", "llm")

# Name prefixes in transformers' InternVLForConditionalGeneration (4.5x and 5.x).
MODULE_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "vision": ("model.vision_tower.",),
    "projector": ("model.multi_modal_projector.",),
    "llm": ("model.language_model.", "lm_head."),
}

# The three policies by the names paper Table 3 reports them under.
POLICY_NAMES: Mapping[str, frozenset[str]] = {
    "projector": frozenset({"projector"}),
    "vision+projector": frozenset({"vision", "projector"}),
    "all": frozenset(MODULES),
}

# The trainable modules of each stage of the recipe.
STAGE_TRAINABLE: Mapping[str, frozenset[str]] = {
    "pretrain-alignment": frozenset({"projector"}),
    "pretrain-advance": frozenset({"vision", "projector"}),
    "sft-knowledge": frozenset(MODULES),
    "sft-instruction": frozenset(MODULES),
    "sft-preference": frozenset(MODULES),
}


def validate_trainable(trainable: Iterable[str]) -> frozenset[str]:
    """The policy as a frozenset; ValueError for unknown or empty module names."""
    policy = frozenset(trainable)
    unknown = policy - set(MODULES)
    if unknown:
        raise ValueError(f"trainable: unknown modules {sorted(unknown)}; known: {list(MODULES)}")
    if not policy:
        raise ValueError("trainable: at least one module must train")
    return policy


def module_of(param_name: str) -> str:
    """The module group ("vision" / "projector" / "llm") a parameter belongs to."""
    for module, prefixes in MODULE_PREFIXES.items():
        if param_name.startswith(prefixes):
            return module
    raise ValueError(f"parameter {param_name!r} belongs to no module of {list(MODULES)}")


def trainable_flags(param_names: Iterable[str], trainable: Iterable[str]) -> dict[str, bool]:
    """requires_grad for each parameter name under the policy `trainable` (pure)."""
    policy = validate_trainable(trainable)
    return {name: module_of(name) in policy for name in param_names}


def apply_freeze(model: Any, trainable: Iterable[str]) -> dict[str, int]:
    """Set requires_grad on every parameter of `model`; return parameter counts.

    The returned dict has the element counts per module group plus "trainable" and
    "total", which the train job logs and the tests compare with the paper.
    """
    named = dict(model.named_parameters())
    flags = trainable_flags(named, trainable)
    for name, param in named.items():
        param.requires_grad_(flags[name])
    return parameter_counts(model)


def parameter_counts(model: Any) -> dict[str, int]:
    """Element counts per module group, trainable and total (works on meta tensors)."""
    counts = dict.fromkeys(MODULES, 0) | {"trainable": 0, "total": 0}
    for name, param in model.named_parameters():
        n = param.numel()
        counts[module_of(name)] += n
        counts["total"] += n
        if param.requires_grad:
            counts["trainable"] += n
    return counts
