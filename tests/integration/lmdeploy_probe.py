"""Run by tests/integration/test_lmdeploy_contract.py with the LMDeploy venv's Python
(tests/fixtures/lmdeploy/install.sh): drives sailvl's LMDeployBackend against the real
`lmdeploy` package and prints what LMDeploy made of it, as one JSON object.

    python lmdeploy_probe.py REPO MODEL_DIR CASES_JSON

What is real: LMDeploy's config classes (their own validation in `__post_init__`), the
signatures of `pipeline`, `VLAsyncEngine.__init__` / `__call__`, the OpenAI-message
handling of `VLAsyncEngine` (`_convert_prompts`, `async_convert_to_pil_images`), the
vision model LMDeploy picks for the folder (`load_vl_model` through `ImageEncoder`, as
the PyTorch engine's pipeline does) with its dynamic tiling, and the prompt and token
ids `ImageEncoder.wrap_for_pytorch` builds with the chat template and tokenizer
`AsyncEngine.__init__` picks. Two stand-ins, for what needs a GPU: `lmdeploy.pipeline`
itself (it starts an engine) is replaced by a recorder after its signature is checked,
and `torch.cuda.mem_get_info` (which `load_vl_model` calls to size a vision model it
only loads for TurboMind) answers for a device that is not there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import io
import json
import sys
from typing import Any


def _fields(obj: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(obj)}


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)


def main(repo: str, model_dir: str, cases_json: str) -> dict[str, Any]:
    sys.path.insert(0, repo)
    import lmdeploy
    import torch
    from lmdeploy.messages import Response
    from lmdeploy.serve.vl_async_engine import VLAsyncEngine

    from sailvl.caption.backends.lmdeploy import LMDeployBackend
    from sailvl.caption.config import EngineConfig, GenerationConfig

    real_pipeline = lmdeploy.pipeline
    made: list[dict[str, Any]] = []

    def recording(cls: Any) -> Any:
        def construct(*args: Any, **kwargs: Any) -> Any:
            obj = cls(*args, **kwargs)  # the real class, its own validation included
            made.append(
                {
                    "class": cls.__name__,
                    "args": len(args),
                    "kwargs": {k: _plain(v) for k, v in kwargs.items()},
                    "fields": sorted(_fields(obj)),
                    "stored": {k: _plain(getattr(obj, k, None)) for k in kwargs},
                    "values": {k: _plain(getattr(obj, k)) for k in sorted(_fields(obj))},
                    "obj": obj,
                }
            )
            return obj

        return construct

    for name in (
        "TurbomindEngineConfig",
        "PytorchEngineConfig",
        "VisionConfig",
        "GenerationConfig",
    ):
        setattr(lmdeploy, name, recording(getattr(lmdeploy, name)))

    pipes: list[dict[str, Any]] = []

    class Recorder:
        """Stands in for the engine `pipeline()` would start (needs a GPU)."""

        def __init__(self, model_path: str, **kwargs: Any) -> None:
            inspect.signature(real_pipeline).bind(model_path, **kwargs)
            # pipeline() hands backend_config, vision_config, ... on to VLAsyncEngine
            rest = {k: v for k, v in kwargs.items() if k != "backend_config"}
            inspect.signature(VLAsyncEngine.__init__).bind(
                None, model_path, backend="pytorch", backend_config=kwargs["backend_config"], **rest
            )
            self.record = {"model_path": model_path, "kwargs": sorted(kwargs), "batches": []}
            pipes.append(self.record)

        def __call__(self, prompts: Any, **kwargs: Any) -> Any:
            inspect.signature(VLAsyncEngine.__call__).bind(None, prompts, **kwargs)
            converted = VLAsyncEngine._convert_prompts(prompts)
            self.record["batches"].append({"n": len(converted), "kwargs": sorted(kwargs)})
            fields = {f.name for f in dataclasses.fields(Response)}
            self.record["response_has_text"] = "text" in fields
            return [
                Response(text=f"caption {i}", generate_token_len=2, input_token_len=1)
                for i in range(len(converted))
            ]

        def close(self) -> None:
            self.record["closed"] = True

    lmdeploy.pipeline = Recorder
    torch.cuda.mem_get_info = lambda device=None: (80 << 30, 80 << 30)

    from lmdeploy.model import ChatTemplateConfig, best_match_model
    from lmdeploy.tokenizer import Tokenizer
    from lmdeploy.vl.engine import ImageEncoder
    from PIL import Image

    out: dict[str, Any] = {"lmdeploy": lmdeploy.__version__, "cases": []}
    for case in json.loads(cases_json):
        made.clear()
        pipes.clear()
        result: dict[str, Any] = {"name": case["name"]}
        out["cases"].append(result)
        try:
            backend = LMDeployBackend(
                model_dir, EngineConfig(**case["engine"]), GenerationConfig(**case["gen"])
            )
        except Exception as err:  # what the backend (or LMDeploy under it) refuses
            result["error"] = f"{type(err).__name__}: {err}"
            continue
        result["made"] = [{k: v for k, v in m.items() if k != "obj"} for m in made]
        if "image" not in case:
            continue
        w, h = case["image"]
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
        raw = buf.getvalue()
        image = Image.open(io.BytesIO(raw))
        chat = backend.prepare(case["prompt"], image, raw)
        texts = backend.generate([chat, chat])
        result["generated"] = texts
        backend.close()
        result["pipeline"] = pipes[0]
        # The engine's own preprocessing of that chat, as VLAsyncEngine._get_prompt_input
        # runs it for the PyTorch engine (the Ascend path; TurboMind shares proc_messages).
        (msgs,) = VLAsyncEngine._convert_prompts([chat])
        msgs = asyncio.run(VLAsyncEngine.async_convert_to_pil_images(msgs))
        backend_config = next(m["obj"] for m in made if m["class"].endswith("EngineConfig"))
        vision_config = next(m["obj"] for m in made if m["class"] == "VisionConfig")
        encoder = ImageEncoder(model_dir, "pytorch", vision_config, backend_config=backend_config)
        result["vision_model"] = type(encoder.model).__name__
        # the per-image parameters exactly as the vision model hands them to its tiler
        result["image_params"] = [p for _, p in encoder.model.collect_images(msgs)]
        template_name = best_match_model(model_dir)
        template = ChatTemplateConfig(template_name, model_path=model_dir).chat_template
        tokenizer = Tokenizer(model_dir)
        pre = asyncio.run(encoder.preprocess(msgs))
        (prep,) = [m["content"] for m in pre if m["role"] == "preprocess"]
        packed = asyncio.run(encoder.wrap_for_pytorch(pre, template, tokenizer, True))
        result.update(
            template=template_name,
            tiles=[int(p["pixel_values"].shape[0]) for p in prep],
            image_tokens=[int(p["image_tokens"]) for p in prep],
            prompt=packed["prompt"],
            input_ids=[int(i) for i in packed["input_ids"]],
            image_token_id=[int(p["image_token_id"]) for p in packed["multimodal"]],
        )
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
