"""The runner's :class:`~sailvl.eval.runner.Generator` on a SAIL-VL checkpoint.

Wraps ``sailvl.model.generate.generate`` (batched, left-padded, greedy, the training
chat template) with the model, tokenizer and image processor of one checkpoint. Heavy
imports (torch, transformers) happen only when a generator is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ModelGenerator:
    """Greedy answers from a loaded SAIL-VL model."""

    def __init__(self, model: Any, tokenizer: Any, processor: Any, *, batch_size: int = 8) -> None:
        self.model, self.tokenizer, self.processor = model, tokenizer, processor
        self.batch_size = batch_size

    def generate(self, batch: Sequence[tuple[list[Any], str]], *, max_new_tokens: int) -> list[str]:
        from sailvl.model.generate import GenerationConfig, generate

        cfg = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, batch_size=self.batch_size
        )
        images = [list(imgs) for imgs, _ in batch]
        prompts = [prompt for _, prompt in batch]
        return generate(self.model, self.tokenizer, self.processor, images, prompts, cfg)


def load_generator(
    model_uri: str | None,
    *,
    preset: str = "tiny",
    batch_size: int = 8,
    max_tiles: int = 6,
    dtype: str = "float32",
    device: str | None = None,
) -> ModelGenerator:
    """A generator for the checkpoint at ``model_uri`` (None: a random model of the
    preset, for demos and tests). ``device`` defaults to CUDA when available."""
    import torch

    from sailvl.model.loader import ModelConfig, load_model
    from sailvl.model.processor import ImageProcessor, ProcessorConfig

    model, tokenizer = load_model(ModelConfig(preset=preset, init_uri=model_uri, dtype=dtype))
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(dev).eval()
    processor = ImageProcessor(ProcessorConfig.for_preset(preset, max_tiles=max_tiles))
    return ModelGenerator(model, tokenizer, processor, batch_size=batch_size)
