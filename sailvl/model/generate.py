"""Batched generation for the caption and eval jobs (transformers backend).

Each sample's images are tiled and normalised (`ImageProcessor`), its prompt is
encoded with the training template (`encode_generation_prompt`: the same ChatML and
`<IMG_CONTEXT>` runs the model was trained on, ending in `<|im_start|>assistant\\n`),
and a batch is left-padded: decoder-only models continue from the last position, so
padding must sit on the left, with the attention mask hiding it and position ids
counted from the first real token (transformers derives them from the mask). All tiles
of the batch go in one pixel_values tensor, sample by sample, which is the order the
model fills the `<IMG_CONTEXT>` positions. Generation stops at `<|im_end|>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sailvl.data.template import TemplateConfig, encode_generation_prompt
from sailvl.model.tokenizer import IM_END

if TYPE_CHECKING:
    from PIL import Image

    from sailvl.model.processor import ImageProcessor


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """Decoding settings."""

    max_new_tokens: int = 128  # tokens generated per sample at most
    do_sample: bool = False  # greedy by default
    temperature: float = 1.0  # sampling temperature (do_sample only); > 0
    top_p: float = 1.0  # nucleus mass (do_sample only); in (0, 1]
    repetition_penalty: float = 1.0  # 1.0 = off
    batch_size: int = 8  # samples per forward batch
    system_prompt: str | None = None  # system turn, as in training

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens: must be positive, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {self.batch_size}")


def generate(
    model: Any,
    tokenizer: Any,
    processor: ImageProcessor,
    images: Sequence[Sequence[Image.Image]],
    prompts: Sequence[str],
    config: GenerationConfig | None = None,
) -> list[str]:
    """One answer per (images, prompt) pair, in order. `images[i]` may be empty."""
    if len(images) != len(prompts):
        raise ValueError(f"images/prompts: {len(images)} image lists for {len(prompts)} prompts")
    cfg = config or GenerationConfig()
    out: list[str] = []
    for start in range(0, len(prompts), cfg.batch_size):
        stop = start + cfg.batch_size
        out.extend(
            _generate_batch(
                model, tokenizer, processor, images[start:stop], prompts[start:stop], cfg
            )
        )
    return out


def _generate_batch(
    model: Any,
    tokenizer: Any,
    processor: ImageProcessor,
    images: Sequence[Sequence[Image.Image]],
    prompts: Sequence[str],
    cfg: GenerationConfig,
) -> list[str]:
    import torch
    from transformers import GenerationConfig as HFGenerationConfig

    from sailvl.model.build import tokens_per_tile

    if processor.tile_size != model.config.vision_config.image_size[0]:
        raise ValueError(
            f"processor tile_size {processor.tile_size} != model tile size "
            f"{model.config.vision_config.image_size[0]}"
        )
    template = TemplateConfig(
        tokens_per_tile=tokens_per_tile(model), system_prompt=cfg.system_prompt
    )
    pixels, rows = [], []
    for sample_images, prompt in zip(images, prompts, strict=True):
        pv, counts = processor(list(sample_images))
        pixels.append(pv)
        rows.append(encode_generation_prompt(tokenizer, prompt, counts, template))
    input_ids, attention_mask = left_pad(rows, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    pixel_values = torch.cat(pixels) if any(len(p) for p in pixels) else None
    if pixel_values is not None:
        pixel_values = pixel_values.to(device=device, dtype=model.dtype)
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    gen = HFGenerationConfig(
        max_new_tokens=cfg.max_new_tokens,
        do_sample=cfg.do_sample,
        temperature=cfg.temperature if cfg.do_sample else None,
        top_p=cfg.top_p if cfg.do_sample else None,
        top_k=None,
        repetition_penalty=cfg.repetition_penalty,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.inference_mode():
        ids = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            pixel_values=pixel_values,
            generation_config=gen,
        )
    new = ids[:, input_ids.shape[1] :]
    return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) long tensors with the padding on the left."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask
