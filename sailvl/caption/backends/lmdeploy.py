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

What was exercised: only the calls above, against a fake `lmdeploy` module injected
into `sys.modules` (tests/unit/test_caption_lmdeploy.py) that records the engine
configs and requests. What was NOT exercised: a real LMDeploy install (it pins
torch <= 2.12.1 and needs a GPU or NPU; there is no CPU engine), so engine start-up,
memory behaviour and the exact response objects of a given LMDeploy release are
untested here; tests/gpu/caption_gpu.py measures it where it can be installed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sailvl.caption.config import EngineConfig, GenerationConfig


class LMDeployBackend:
    name = "lmdeploy"

    def __init__(self, model_path: str, engine: EngineConfig, gen: GenerationConfig) -> None:
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
        # Greedy = do_sample False with top_k 1; when sampling, top_k 0 keeps LMDeploy's
        # default rather than passing a value whose meaning differs between releases.
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
            if gen.top_k:
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
