"""transformers backend: SAIL-VL / InternVL generation with `model.generate`.

Runs anywhere torch runs (CPU in the tests with the tiny preset, CUDA, or NPU through
torch_npu). The model and tokenizer come from `sailvl.model.loader.load_pretrained`
(a Hugging Face folder or an object-store URI).

The work is the shared inference path of `sailvl.model.generate`, split the way the
worker drives a backend: `prepare` (prefetch thread) runs `prepare_sample`, the CPU
half (InternVL dynamic tiling via `sailvl.data.tiling`, ImageNet normalisation, the
training chat template with the image first), and `generate` (main thread) runs
`generate_prepared` on the batch (left padding, one `generate` call, new tokens decoded
up to `<|im_end|>`). The caption prompt is encoded literally: alt-text quoted in it is
data, so an `<image>` or `<|im_end|>` in it stays text.

Caption settings map onto the shared `GenerationConfig`: temperature 0 is greedy,
otherwise sampling with temperature, top_p, top_k and the seed (torch is reseeded
before every batch, so a retried shard reproduces its captions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sailvl.caption.config import EngineConfig, GenerationConfig


def shared_generation_config(gen: GenerationConfig, batch_size: int) -> Any:
    """The `sailvl.model.generate.GenerationConfig` for caption generation settings."""
    from sailvl.model.generate import GenerationConfig as SharedConfig

    sampling: dict[str, Any] = {}
    if gen.temperature > 0:
        sampling = {
            "do_sample": True,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "top_k": gen.top_k,
            "seed": gen.seed,
        }
    return SharedConfig(
        max_new_tokens=gen.max_new_tokens,
        repetition_penalty=gen.repetition_penalty,
        batch_size=batch_size,
        **sampling,
    )


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_uri: str, engine: EngineConfig, gen: GenerationConfig) -> None:
        import torch

        from sailvl.model.generate import check_processor, template_for
        from sailvl.model.loader import load_pretrained
        from sailvl.model.processor import ImageProcessor, ProcessorConfig

        device = engine.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "npu":
            import torch_npu  # noqa: F401  (registers the npu device)
        dtype = engine.dtype
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        model, tok = load_pretrained(model_uri, dtype=dtype)
        self.model = model.to(device).eval()
        self.tok = tok
        self.device = device
        self.engine, self.gen = engine, gen
        self.processor = ImageProcessor(
            ProcessorConfig.for_model(
                model, max_tiles=engine.max_dynamic_patch, use_thumbnail=engine.use_thumbnail
            )
        )
        check_processor(model, self.processor)
        self.template = template_for(model)
        self.config = shared_generation_config(gen, engine.batch_size)

    def prepare(self, prompt: str, image: Any, raw: bytes) -> Any:
        from sailvl.model.generate import prepare_sample

        return prepare_sample(
            self.tok, self.processor, [image], prompt, self.template, literal=True
        )

    def generate(self, batch: Sequence[Any]) -> list[str]:
        from sailvl.model.generate import generate_prepared

        return generate_prepared(self.model, self.tok, batch, self.config)

    def close(self) -> None:
        self.model = None
