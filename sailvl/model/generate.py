"""Batched generation for the caption and eval jobs (transformers backend).

Two steps, so that a pipeline can run the CPU half off the accelerator's thread (the
caption worker prepares in its prefetch thread):

- `prepare_sample` (CPU): the sample's images are tiled and normalised
  (`ImageProcessor`) and its prompt is encoded with the training template
  (`encode_generation_prompt`: the same ChatML and `<IMG_CONTEXT>` runs the model was
  trained on, ending in `<|im_start|>assistant\\n`).
- `generate_prepared` (device): a batch is left-padded: decoder-only models continue
  from the last position, so padding must sit on the left, with the attention mask
  hiding it and position ids counted from the first real token (transformers derives
  them from the mask). All tiles of the batch go in one pixel_values tensor, sample by
  sample, which is the order the model fills the `<IMG_CONTEXT>` positions.
  Generation stops at `<|im_end|>`; only the new tokens are decoded.

`generate` does both over a list of samples in batches of `batch_size`.

Sampling draws from torch's global generator. With `seed` set, it is reseeded before
every batch, so a batch's output depends only on its inputs and the seed, not on what
ran before: a retried or resumed shard reproduces its captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sailvl.data.template import TemplateConfig, encode_generation_prompt
from sailvl.model.tokenizer import IM_END

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from sailvl.model.processor import ImageProcessor


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """Decoding settings."""

    max_new_tokens: int = 128  # tokens generated per sample at most
    do_sample: bool = False  # greedy by default
    temperature: float = 1.0  # sampling temperature (do_sample only); > 0
    top_p: float = 1.0  # nucleus mass (do_sample only); in (0, 1]
    top_k: int = 0  # keep the k likeliest tokens (do_sample only); 0 = no cut
    repetition_penalty: float = 1.0  # 1.0 = off; > 1 discourages repeats
    seed: int | None = None  # reseed torch before each batch (do_sample); None = leave it
    batch_size: int = 8  # samples per forward batch
    system_prompt: str | None = None  # system turn, as in training

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens: must be positive, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k: must be >= 0, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty: must be > 0, got {self.repetition_penalty}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {self.batch_size}")


@dataclass
class PreparedSample:
    """One sample's model inputs before batching."""

    input_ids: list[int]  # the encoded prompt, ending in `<|im_start|>assistant\n`
    pixel_values: torch.Tensor  # (tiles, 3, S, S); zero rows when the sample has no image


def template_for(model: Any, system_prompt: str | None = None) -> TemplateConfig:
    """The prompt template matching a built / loaded model (its tokens per tile)."""
    from sailvl.model.build import tokens_per_tile

    return TemplateConfig(tokens_per_tile=tokens_per_tile(model), system_prompt=system_prompt)


def check_processor(model: Any, processor: ImageProcessor) -> None:
    """Tiles must have the size the vision tower was built for."""
    size = model.config.vision_config.image_size[0]
    if processor.tile_size != size:
        raise ValueError(f"processor tile_size {processor.tile_size} != model tile size {size}")


def prepare_sample(
    tokenizer: Any,
    processor: ImageProcessor,
    images: Sequence[Image.Image],
    prompt: str,
    template: TemplateConfig,
    *,
    literal: bool = False,
) -> PreparedSample:
    """Tile, normalise and encode one sample (CPU only; safe off the main thread).

    `literal`: the prompt is plain text (it may carry data such as alt-text), so an
    `<image>` in it is not a placeholder; the images go first.
    """
    pixels, counts = processor(list(images))
    ids = encode_generation_prompt(tokenizer, prompt, counts, template, literal=literal)
    return PreparedSample(input_ids=ids, pixel_values=pixels)


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
    check_processor(model, processor)
    template = template_for(model, cfg.system_prompt)
    out: list[str] = []
    for start in range(0, len(prompts), cfg.batch_size):
        stop = start + cfg.batch_size
        batch = [
            prepare_sample(tokenizer, processor, imgs, prompt, template)
            for imgs, prompt in zip(images[start:stop], prompts[start:stop], strict=True)
        ]
        out.extend(generate_prepared(model, tokenizer, batch, cfg))
    return out


def generate_prepared(
    model: Any, tokenizer: Any, batch: Sequence[PreparedSample], cfg: GenerationConfig
) -> list[str]:
    """One answer per prepared sample, generated as a single batch (no splitting)."""
    import torch
    from transformers import GenerationConfig as HFGenerationConfig

    if not batch:
        return []
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    input_ids, attention_mask = left_pad([s.input_ids for s in batch], pad)
    device = next(model.parameters()).device
    pixel_values = None
    if any(len(s.pixel_values) for s in batch):
        pixel_values = torch.cat([s.pixel_values for s in batch])
        pixel_values = pixel_values.to(device=device, dtype=model.dtype)
    gen = HFGenerationConfig(
        max_new_tokens=cfg.max_new_tokens,
        do_sample=cfg.do_sample,
        temperature=cfg.temperature if cfg.do_sample else None,
        top_p=cfg.top_p if cfg.do_sample else None,
        top_k=(cfg.top_k or None) if cfg.do_sample else None,
        repetition_penalty=cfg.repetition_penalty,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    if cfg.do_sample and cfg.seed is not None:
        torch.manual_seed(cfg.seed)
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
