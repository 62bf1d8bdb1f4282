"""Parameter counts on the meta device against paper Table 3, and the freeze policy."""

from __future__ import annotations

import pytest

from sailvl.model.build import build_config, build_model
from sailvl.model.freeze import (
    MODULES,
    POLICY_NAMES,
    STAGE_TRAINABLE,
    apply_freeze,
    module_of,
    parameter_counts,
    trainable_flags,
)
from sailvl.model.presets import PRESETS, ModelPreset, get_preset

POLICIES = {
    "projector": {"projector"},
    "vision+projector": {"vision", "projector"},
    "all": {"vision", "projector", "llm"},
}


@pytest.mark.parametrize("name", ["2b", "8b"])
def test_trainable_params_match_paper_within_half_a_percent(name: str) -> None:
    model = build_model(name, device="meta")
    assert all(p.is_meta for p in model.parameters())
    reference = get_preset(name).reference_params
    assert set(reference) == set(POLICIES)
    for policy, trainable in POLICIES.items():
        counts = apply_freeze(model, trainable)
        rel = abs(counts["trainable"] - reference[policy]) / reference[policy]
        assert rel < 0.005, (name, policy, counts["trainable"], reference[policy])


def test_tie_word_embeddings_is_set_on_the_top_level_config() -> None:
    small = build_model("2b", device="meta")
    big = build_model("8b", device="meta")
    assert small.config.tie_word_embeddings and not big.config.tie_word_embeddings
    assert small.lm_head.weight is small.model.language_model.embed_tokens.weight
    assert big.lm_head.weight is not big.model.language_model.embed_tokens.weight
    # the untied 7B head is what takes the 8B model from 7.40B to 7.95B
    assert parameter_counts(big)["llm"] - parameter_counts(small)["llm"] > 5.5e9


def test_tiny_is_small_and_keeps_the_token_arithmetic() -> None:
    tiny = get_preset("tiny")
    assert (tiny.tile_size, tiny.patch_size, tiny.tokens_per_tile) == (64, 8, 16)
    assert get_preset("2b").tokens_per_tile == 256 == get_preset("8b").tokens_per_tile
    counts = parameter_counts(build_model("tiny", device="meta"))
    assert counts["total"] < 3_000_000
    assert all(counts[m] > 0 for m in MODULES)
    cfg = build_config("tiny")
    assert cfg.image_seq_length == 16 and cfg.downsample_ratio == 0.5
    assert cfg.vision_config.image_size == [64, 64]


def test_freeze_policy_is_a_pure_function_of_module_names() -> None:
    names = [
        "model.vision_tower.embeddings.cls_token",
        "model.multi_modal_projector.linear_1.weight",
        "model.language_model.layers.0.mlp.up_proj.weight",
        "lm_head.weight",
    ]
    assert trainable_flags(names, {"projector"}) == dict(
        zip(names, [False, True, False, False], strict=True)
    )
    assert trainable_flags(names, {"vision", "projector"}) == dict(
        zip(names, [True, True, False, False], strict=True)
    )
    assert all(trainable_flags(names, MODULES).values())
    assert module_of("lm_head.weight") == "llm"
    with pytest.raises(ValueError, match="belongs to no module"):
        module_of("model.new_thing.weight")
    with pytest.raises(ValueError, match="unknown modules"):
        trainable_flags(names, {"projector", "decoder"})
    with pytest.raises(ValueError, match="at least one"):
        trainable_flags(names, set())


def test_apply_freeze_sets_requires_grad_by_group() -> None:
    model = build_model("tiny", device="meta")
    counts = apply_freeze(model, {"vision", "projector"})
    assert counts["trainable"] == counts["vision"] + counts["projector"]
    for name, p in model.named_parameters():
        assert p.requires_grad == (module_of(name) != "llm"), name


def test_stage_policies_are_nested_as_in_table_3() -> None:
    assert STAGE_TRAINABLE["pretrain-alignment"] == {"projector"}
    assert STAGE_TRAINABLE["pretrain-advance"] == {"vision", "projector"}
    assert all(STAGE_TRAINABLE[s] == set(MODULES) for s in STAGE_TRAINABLE if s.startswith("sft"))
    assert set(POLICY_NAMES) == set(POLICIES)


def test_preset_registry_and_validation() -> None:
    assert {"tiny", "2b", "8b"} <= set(PRESETS)
    with pytest.raises(ValueError, match="unknown model preset"):
        get_preset("70b")
    tiny = PRESETS["tiny"]
    with pytest.raises(ValueError, match="patch_size"):
        ModelPreset(name="x", vision=tiny.vision, text=tiny.text, tile_size=60, patch_size=8)
    with pytest.raises(ValueError, match="downsample_ratio"):
        ModelPreset(name="x", vision=tiny.vision, text=tiny.text, tile_size=56, patch_size=8)
