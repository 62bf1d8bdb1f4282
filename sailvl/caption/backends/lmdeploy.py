"""LMDeploy backend: the paper's serving engine for the captioner.

Written against LMDeploy's documented Python API (docs "Offline inference pipeline" and
"VLM offline inference"):

    pipe = pipeline(model_path,
                    backend_config=TurbomindEngineConfig(tp=..., session_len=...,
                        cache_max_entry_count=..., max_batch_size=...),
                    vision_config=VisionConfig(max_batch_size=...))
    responses = pipe([(prompt, image), ...], gen_config=GenerationConfig(...))
    responses[i].text

On Ascend NPUs the TurboMind engine does not exist; the PyTorch engine is selected with
`PytorchEngineConfig(device_type='ascend', tp=..., session_len=..., ...)`. The number of
448 px tiles per image travels with each request in the documented OpenAI-style message
form, `{'type': 'image_url', 'image_url': {'max_dynamic_patch': n, 'url': data-URL}}`
(LMDeploy's InternVL docs), built from the image's original encoded bytes so nothing is
re-encoded. The simpler `(prompt, image)` tuple form has no per-image tile setting.

The version is pinned once, in images/lmdeploy-requirements.txt (0.10.0), which the
captioner images install. tests/integration/test_lmdeploy_contract.py runs this class
against that real release in a CPU-only venv `make tools` builds
(tests/fixtures/lmdeploy/install.sh): the configs must be LMDeploy's own classes holding
exactly these arguments as fields, `pipeline` and the pipeline's call must accept them,
and the chat built by `prepare` goes through LMDeploy's message conversion, InternVL
vision preprocessing (dynamic tiling with the per-image budget), chat template and
tokenizer to the prompt and token ids the PyTorch engine receives. What needs a device
is not run there: engine start-up, generation, memory; tests/gpu/lmdeploy_gpu.py
measures those where a GPU is lent. The fake-module unit tests
(tests/unit/test_caption_lmdeploy.py) keep the call shapes fast to check.

Found by the contract test and handled here: LMDeploy's samplers read top_k <= 0 as
"no top-k cut", sailvl's meaning of 0, but its GenerationConfig default is 50, so top_k
is always passed when sampling; and two values sailvl's config allows are refused by
LMDeploy's asserts without naming the setting (PytorchEngineConfig wants
cache_max_entry_count < 1, GenerationConfig temperature <= 2), so they are refused here,
naming the sailvl field, before any engine starts.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sailvl.caption.config import EngineConfig, GenerationConfig


class LMDeployBackend:
    name = "lmdeploy"

    def __init__(self, model_path: str, engine: EngineConfig, gen: GenerationConfig) -> None:
        _check_lmdeploy_limits(engine, gen)
        import lmdeploy  # optional extra: sailvl[lmdeploy]

        self._engine = engine
        common = dict(
            tp=engine.tp,
            session_len=engine.session_len,
            cache_max_entry_count=engine.cache_max_entry_count,
            max_batch_size=engine.batch_size,
        )
        if engine.device == "npu":
            backend_config = lmdeploy.PytorchEngineConfig(device_type="ascend", **common)
        else:
            backend_config = lmdeploy.TurbomindEngineConfig(**common)
        self._pipe = lmdeploy.pipeline(
            model_path,
            backend_config=backend_config,
            vision_config=lmdeploy.VisionConfig(max_batch_size=engine.vision_batch_size),
        )
        # Greedy = do_sample False with top_k 1. When sampling, top_k is always passed:
        # 0 means "no top-k cut" to sailvl and to LMDeploy's samplers alike, while
        # leaving it out would get GenerationConfig's default of 50.
        sampling = gen.temperature > 0
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=gen.max_new_tokens,
            do_sample=sampling,
            top_p=gen.top_p,
            repetition_penalty=gen.repetition_penalty,
            random_seed=gen.seed,
        )
        if sampling:
            gen_kwargs["temperature"] = gen.temperature
            gen_kwargs["top_k"] = gen.top_k
        else:
            gen_kwargs["top_k"] = 1
        self._gen_config = lmdeploy.GenerationConfig(**gen_kwargs)

    def prepare(self, prompt: str, image: Any, raw: bytes) -> Any:
        """One OpenAI-style chat (a list of messages); the tile budget rides with the image.
        The MIME type in the data URL is nominal: LMDeploy decodes with PIL, which sniffs."""
        url = "data:image/jpeg;base64," + base64.b64encode(raw).decode("ascii")
        image_url = {"max_dynamic_patch": self._engine.max_dynamic_patch, "url": url}
        return [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": image_url},
                ],
            }
        ]

    def generate(self, batch: Sequence[Any]) -> list[str]:
        responses = self._pipe(list(batch), gen_config=self._gen_config)
        if not isinstance(responses, list):
            responses = [responses]
        return [str(getattr(r, "text", r) or "") for r in responses]

    def close(self) -> None:
        close = getattr(self._pipe, "close", None)
        if callable(close):
            close()


def _check_lmdeploy_limits(engine: EngineConfig, gen: GenerationConfig) -> None:
    """Refuse, naming the sailvl field, what LMDeploy 0.10's config asserts would refuse
    with a bare AssertionError ('invalid cache_max_entry_count', or none at all)."""
    if engine.device == "npu" and engine.cache_max_entry_count >= 1:
        raise ValueError(
            f"engine.cache_max_entry_count: {engine.cache_max_entry_count} - LMDeploy's "
            "PyTorch engine (device npu) needs a share below 1 of the free device memory"
        )
    if gen.temperature > 2:
        raise ValueError(f"generation.temperature: {gen.temperature} - LMDeploy accepts 0 to 2")
