"""Checkpoints: save -> load round trips, stage-1 init from parts, config validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sailvl.model.build import build_model
from sailvl.model.checkpoint import download_to_temp, save_checkpoint, save_parts
from sailvl.model.loader import ModelConfig, load_model, load_pretrained
from sailvl.model.tokenizer import build_tiny_tokenizer
from sailvl.storage import COMMIT_MARKER

TOK = build_tiny_tokenizer()
IDS = torch.tensor([TOK.encode("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")])
PIX = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
IMG_IDS = torch.cat([IDS[:, :3], torch.full((1, 32), 261), IDS[:, 3:]], dim=1)


@pytest.fixture(scope="module")
def model():
    return build_model("tiny", seed=123).eval()


def logits(m, ids=IMG_IDS, pix=PIX):
    with torch.no_grad():
        return m(input_ids=ids, pixel_values=pix, use_cache=False).logits


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_save_load_round_trip_gives_equal_outputs(model, tmp_path: Path, scheme: str) -> None:
    uri = scheme + str(tmp_path / "ckpt")
    sizes = save_checkpoint(model, TOK, uri)
    assert "config.json" in sizes and any(k.endswith(".safetensors") for k in sizes)
    assert (tmp_path / "ckpt" / COMMIT_MARKER).exists()
    loaded, tok = load_pretrained(uri)
    assert torch.equal(logits(loaded.eval()), logits(model))
    assert tok.encode("héllo <img>") == TOK.encode("héllo <img>")
    assert loaded.config.image_token_id == 261
    assert loaded.lm_head.weight is loaded.model.language_model.embed_tokens.weight


def test_download_to_temp_copies_every_object(model, tmp_path: Path) -> None:
    save_checkpoint(model, TOK, str(tmp_path / "src"))
    tmp = download_to_temp("file://" + str(tmp_path / "src"))
    try:
        src = sorted(p.name for p in (tmp_path / "src").iterdir())
        assert sorted(os.listdir(tmp)) == src
        for name in src:
            assert Path(tmp, name).read_bytes() == (tmp_path / "src" / name).read_bytes()
    finally:
        import shutil

        shutil.rmtree(tmp)
    with pytest.raises(ValueError, match="no objects"):
        download_to_temp("file://" + str(tmp_path / "empty"))


def test_stage1_init_from_vision_and_llm_parts(model, tmp_path: Path) -> None:
    vision_uri, llm_uri = str(tmp_path / "vit"), "file://" + str(tmp_path / "llm")
    save_parts(model, TOK, vision_uri, llm_uri)
    assert (tmp_path / "llm" / "tokenizer.json").exists()
    loaded, tok = load_model(ModelConfig(vision_uri=vision_uri, llm_uri=llm_uri, seed=7))
    src, dst = model.state_dict(), loaded.state_dict()
    assert src.keys() == dst.keys()
    for k in src:
        if not k.startswith("model.multi_modal_projector."):
            assert torch.equal(src[k], dst[k]), k
    # the projector is freshly initialised, not copied
    assert not torch.equal(
        src["model.multi_modal_projector.linear_1.weight"],
        dst["model.multi_modal_projector.linear_1.weight"],
    )
    # text-only inputs never touch the projector: identical logits
    assert torch.equal(logits(loaded.eval(), IDS, None), logits(model, IDS, None))
    assert loaded.lm_head.weight is loaded.model.language_model.embed_tokens.weight
    assert len(tok) == len(TOK)


def test_stage1_init_with_only_the_llm(model, tmp_path: Path) -> None:
    save_parts(model, TOK, str(tmp_path / "vit"), str(tmp_path / "llm"))
    loaded, _ = load_model(ModelConfig(llm_uri=str(tmp_path / "llm")))
    assert torch.equal(logits(loaded.eval(), IDS, None), logits(model, IDS, None))
    assert not any(t.is_meta for t in loaded.state_dict().values())
    out = loaded(input_ids=IMG_IDS, pixel_values=PIX, use_cache=False).logits
    assert torch.isfinite(out).all()


def test_random_tiny_and_dtype(tmp_path: Path) -> None:
    model, tok = load_model(ModelConfig(dtype="bfloat16", seed=1))
    assert model.dtype == torch.bfloat16
    again, _ = load_model(ModelConfig(dtype="bfloat16", seed=1))
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True)
    )
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == model.config.image_token_id


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "2b"}, "llm_uri"),
        ({"preset": "nope"}, "preset"),
        ({"init_uri": "x", "llm_uri": "y"}, "init_uri"),
        ({"dtype": "float64"}, "dtype"),
    ],
)
def test_model_config_validation(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_missing_checkpoint_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(str(tmp_path / "nothing"))
