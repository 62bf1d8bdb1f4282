"""The LMDeploy adapter against a fake `lmdeploy` module: the documented calls only."""

from __future__ import annotations

import base64
import sys
import types
from typing import Any

import pytest

from sailvl.caption.config import EngineConfig, GenerationConfig


class _Cfg:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw


@pytest.fixture
def fake_lmdeploy(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    calls = types.SimpleNamespace(pipeline=[], requests=[], closed=False)

    class Response:
        def __init__(self, text: str) -> None:
            self.text = text

    class Pipe:
        def __call__(self, prompts: list[Any], gen_config: Any = None) -> list[Response]:
            calls.requests.append((prompts, gen_config))
            return [Response(f"caption {i}") for i in range(len(prompts))]

        def close(self) -> None:
            calls.closed = True

    def pipeline(path: str, **kw: Any) -> Pipe:
        calls.pipeline.append((path, kw))
        return Pipe()

    mod = types.ModuleType("lmdeploy")
    for name in (
        "TurbomindEngineConfig",
        "PytorchEngineConfig",
        "VisionConfig",
        "GenerationConfig",
    ):
        setattr(mod, name, type(name, (_Cfg,), {}))
    mod.pipeline = pipeline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lmdeploy", mod)
    return calls


def test_turbomind_engine_and_batch(fake_lmdeploy: Any) -> None:
    from sailvl.caption.backends.lmdeploy import LMDeployBackend

    eng = EngineConfig(
        tp=2,
        batch_size=16,
        session_len=4096,
        cache_max_entry_count=0.5,
        vision_batch_size=4,
        max_dynamic_patch=12,
        device="cuda",
    )
    b = LMDeployBackend("/models/cap", eng, GenerationConfig(max_new_tokens=300))
    path, kw = fake_lmdeploy.pipeline[0]
    assert path == "/models/cap"
    assert type(kw["backend_config"]).__name__ == "TurbomindEngineConfig"
    assert kw["backend_config"].kw == {
        "tp": 2,
        "session_len": 4096,
        "cache_max_entry_count": 0.5,
        "max_batch_size": 16,
    }
    assert kw["vision_config"].kw == {"max_batch_size": 4}
    batch = [b.prepare("Describe.", None, b"\x89PNG-bytes"), b.prepare("Two", None, b"x")]
    assert b.generate(batch) == ["caption 0", "caption 1"]
    prompts, gen = fake_lmdeploy.requests[0]
    msg = prompts[0][0]
    assert msg["role"] == "user" and msg["content"][0] == {"type": "text", "text": "Describe."}
    img = msg["content"][1]["image_url"]
    assert img["max_dynamic_patch"] == 12
    assert base64.b64decode(img["url"].split(",", 1)[1]) == b"\x89PNG-bytes"
    assert gen.kw["max_new_tokens"] == 300 and gen.kw["do_sample"] is False
    assert gen.kw["top_k"] == 1
    b.close()
    assert fake_lmdeploy.closed


def test_ascend_uses_pytorch_engine_and_sampling(fake_lmdeploy: Any) -> None:
    from sailvl.caption.backends.lmdeploy import LMDeployBackend

    LMDeployBackend(
        "/m",
        EngineConfig(device="npu", tp=4),
        GenerationConfig(temperature=0.7, top_p=0.9, top_k=40, seed=3),
    )
    _, kw = fake_lmdeploy.pipeline[0]
    cfg = kw["backend_config"]
    assert type(cfg).__name__ == "PytorchEngineConfig"
    assert cfg.kw["device_type"] == "ascend" and cfg.kw["tp"] == 4


def test_make_backend_selects_lmdeploy(fake_lmdeploy: Any, tmp_path: Any) -> None:
    from sailvl.caption.backends import make_backend
    from sailvl.caption.config import CaptionConfig

    cfg = CaptionConfig(
        input_uri="file:///a",
        output_uri="file:///b",
        model_uri=f"file://{tmp_path}",
        backend="lmdeploy",
    )
    b = make_backend(cfg)
    assert b.name == "lmdeploy" and fake_lmdeploy.pipeline[0][0] == str(tmp_path)
