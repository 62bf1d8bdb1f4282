"""Tiny SAIL-VL forward / backward with image tokens, and the image processor."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from sailvl.data.template import IGNORE_INDEX, TemplateConfig, encode_conversation
from sailvl.model.build import build_model, tokens_per_tile
from sailvl.model.freeze import apply_freeze, module_of
from sailvl.model.processor import IMAGENET_MEAN, IMAGENET_STD, ImageProcessor, ProcessorConfig
from sailvl.model.tokenizer import build_tiny_tokenizer

TOK = build_tiny_tokenizer()
PROC = ImageProcessor(ProcessorConfig.for_preset("tiny", max_tiles=4))


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    img = Image.new("RGB", (130, 60), (200, 30, 30))
    pixel_values, counts = PROC([img])
    conv = [
        {"role": "user", "content": "<image>\nWhat colour is it?"},
        {"role": "assistant", "content": "It is red."},
    ]
    enc = encode_conversation(TOK, conv, counts, TemplateConfig(tokens_per_tile=16))
    return {
        "input_ids": torch.tensor([enc.input_ids]),
        "labels": torch.tensor([enc.labels]),
        "pixel_values": pixel_values,
    }


def test_processor_normalises_with_imagenet_stats() -> None:
    pv, counts = PROC([Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("L", (200, 64), 0)])
    assert counts == [1, 4]  # 1x1; 3x1 grid + thumbnail
    assert pv.shape == (5, 3, 64, 64) and pv.dtype == torch.float32
    red = pv[0, :, 10, 10]
    expected = [(1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]] + [
        -IMAGENET_MEAN[c] / IMAGENET_STD[c] for c in (1, 2)
    ]
    assert torch.allclose(red, torch.tensor(expected), atol=1e-5)
    assert ProcessorConfig.for_model(build_model("tiny", device="meta"), max_tiles=4) == PROC.config
    empty, none = PROC([])
    assert empty.shape == (0, 3, 64, 64) and none == []


def test_forward_loss_is_cross_entropy_on_supervised_shifted_labels(batch) -> None:
    model = build_model("tiny")
    assert batch["pixel_values"].shape[0] * tokens_per_tile(model) == int(
        (batch["input_ids"] == model.config.image_token_id).sum()
    )
    out = model(**batch, use_cache=False)
    logits = out.logits[0, :-1]
    target = batch["labels"][0, 1:]
    manual = torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    assert torch.isfinite(out.loss)
    assert torch.allclose(out.loss, manual, atol=1e-6)
    # explicit position ids 0..n-1 are the default
    pos = torch.arange(batch["input_ids"].shape[1])[None]
    again = model(**batch, position_ids=pos, use_cache=False)
    assert torch.allclose(again.logits, out.logits, atol=1e-6)
    # the image reaches the logits: other pixels, other logits after the image
    other = model(**{**batch, "pixel_values": -batch["pixel_values"]}, use_cache=False)
    assert not torch.allclose(other.logits[0, -5:], out.logits[0, -5:])


def test_backward_reaches_only_the_trainable_modules(batch) -> None:
    model = build_model("tiny")
    apply_freeze(model, {"projector"})
    model(**batch, use_cache=False).loss.backward()
    for name, p in model.named_parameters():
        if module_of(name) == "projector":
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    model.zero_grad(set_to_none=True)
    apply_freeze(model, {"vision", "projector", "llm"})
    model(**batch, use_cache=False).loss.backward()
    vision_grads = [p.grad for n, p in model.named_parameters() if module_of(n) == "vision"]
    assert all(g is not None for g in vision_grads)
    assert sum(float(g.abs().sum()) for g in vision_grads) > 0


def test_image_token_count_mismatch_raises(batch) -> None:
    model = build_model("tiny")
    with pytest.raises(ValueError, match="do not match"):
        model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"][:1], use_cache=False)
