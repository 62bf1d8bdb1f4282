"""sailvl's LMDeploy backend against the real `lmdeploy` package (the version the
captioner images install, images/lmdeploy-requirements.txt), in the virtualenv `make
tools` builds for it (tests/fixtures/lmdeploy/install.sh: LMDeploy's own torch, CPU
only). LMDeploy has no CPU engine, so what runs is everything before the engine:
tests/integration/lmdeploy_probe.py constructs the backend in that venv and reports

- the engine, vision and generation configs the backend built, as LMDeploy's own classes
  stored them (every argument must be a field of the class: TurbomindEngineConfig is a
  pydantic dataclass that would keep an unknown one silently);
- that `pipeline(...)` and the pipeline's `__call__` accept the arguments the backend
  passes (checked against the real signatures);
- the backend's OpenAI-style chat for one image, through VLAsyncEngine's message
  conversion, the vision model LMDeploy picks for an InternVL-Chat folder, its dynamic
  tiling with the per-image `max_dynamic_patch`, the chat template and tokenizer
  AsyncEngine picks, and the prompt and token ids the PyTorch engine (Ascend) receives.

The model folder is the `tiny` preset in the InternVL-Chat layout sailvl exports
(config via `native_to_chat`, the tiny tokenizer with its ChatML template), weightless,
plus the few lines of remote-code config class a published InternVL folder ships
(`configuration_internvl_chat.py`), so that `AutoConfig` builds nested configs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import REPO

INSTALL = REPO / "tests" / "fixtures" / "lmdeploy" / "install.sh"
PROBE = Path(__file__).with_name("lmdeploy_probe.py")

#: The per-image tile budget is the point: a 3:1 image with budget 2 gets 2 tiles plus
#: the thumbnail, budget 1 one tile and no thumbnail; the folder's own
#: max_dynamic_patch (12) would give 3 + 1.
IMAGE = (192, 64)
PROMPT = "Describe the image in detail."

CONFIG_CODE = """
from transformers import PretrainedConfig, Qwen2Config


class InternVisionConfig(PretrainedConfig):
    model_type = "intern_vit_6b"


class InternVLChatConfig(PretrainedConfig):
    model_type = "internvl_chat"
    is_composition = True

    def __init__(self, vision_config=None, llm_config=None, **kwargs):
        super().__init__(**kwargs)
        self.vision_config = InternVisionConfig(**(vision_config or {}))
        self.llm_config = Qwen2Config(**(llm_config or {}))

    def to_dict(self):
        out = super().to_dict()
        out["vision_config"] = self.vision_config.to_dict()
        out["llm_config"] = self.llm_config.to_dict()
        return out
"""


@pytest.fixture(scope="module")
def lmdeploy_python() -> Path:
    venv = Path(
        subprocess.run(
            ["bash", str(INSTALL), "--print-path"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    if not (venv / ".complete").exists():
        msg = f"no LMDeploy venv at {venv}: run `make tools` (bash {INSTALL})"
        if os.environ.get("SAILVL_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weightless InternVL-Chat folder of the tiny preset, as sailvl exports it."""
    pytest.importorskip("transformers")
    from sailvl.model.build import build_config
    from sailvl.model.convert_config import native_to_chat
    from sailvl.model.tokenizer import build_tiny_tokenizer

    path = tmp_path_factory.mktemp("models") / "captioner"
    path.mkdir()
    config = native_to_chat(build_config("tiny").to_dict())
    config["auto_map"] = {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig"}
    (path / "config.json").write_text(json.dumps(config))
    (path / "configuration_internvl_chat.py").write_text(CONFIG_CODE)
    build_tiny_tokenizer().save_pretrained(str(path))
    return path


def probe(python: Path, model: Path, cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    proc = subprocess.run(
        [str(python), str(PROBE), str(REPO), str(model), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        raise AssertionError(f"probe exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["lmdeploy"] == pinned_version(), out["lmdeploy"]
    return {c["name"]: c for c in out["cases"]}


def pinned_version() -> str:
    req = (REPO / "images" / "lmdeploy-requirements.txt").read_text()
    (line,) = [x for x in req.splitlines() if x.startswith("lmdeploy==")]
    return line.split("==")[1].strip()


ENGINE = dict(tp=2, batch_size=4, session_len=4096, cache_max_entry_count=0.5,
              vision_batch_size=3)  # fmt: skip
CASES: list[dict[str, Any]] = [
    {
        "name": "cuda-greedy",
        "engine": {**ENGINE, "device": "cuda", "max_dynamic_patch": 2},
        "gen": {"temperature": 0.0, "max_new_tokens": 77, "repetition_penalty": 1.05, "seed": 3},
        "image": IMAGE,
        "prompt": PROMPT,
    },
    {
        "name": "ascend-sampling",
        "engine": {**ENGINE, "device": "npu", "max_dynamic_patch": 1},
        "gen": {"temperature": 0.7, "top_p": 0.9, "top_k": 0, "max_new_tokens": 64, "seed": 5},
        "image": IMAGE,
        "prompt": PROMPT,
    },
    {
        "name": "ascend-top-k",
        "engine": {**ENGINE, "device": "npu"},
        "gen": {"temperature": 0.7, "top_k": 20},
    },
    # Values sailvl's own config accepts but LMDeploy's asserts refuse without naming
    # the setting: the backend must refuse them naming the sailvl field.
    {
        "name": "ascend-full-cache",
        "engine": {**ENGINE, "device": "npu", "cache_max_entry_count": 1.0},
        "gen": {},
    },  # fmt: skip
    {
        "name": "hot-temperature",
        "engine": {**ENGINE, "device": "cuda"},
        "gen": {"temperature": 2.5},
    },
]


@pytest.fixture(scope="module")
def results(lmdeploy_python: Path, model_dir: Path) -> dict[str, dict[str, Any]]:
    return probe(lmdeploy_python, model_dir, CASES)


def made(result: dict[str, Any], cls: str) -> dict[str, Any]:
    (m,) = [m for m in result["made"] if m["class"] == cls]
    assert m["args"] == 0, f"{cls}: positional arguments {m}"
    unknown = set(m["kwargs"]) - set(m["fields"])
    assert not unknown, f"{cls} has no field(s) {sorted(unknown)}: LMDeploy would ignore them"
    assert m["stored"] == m["kwargs"], f"{cls} changed what it was given: {m}"
    values: dict[str, Any] = m["values"]  # every field, LMDeploy's defaults included
    return values


def test_turbomind_configs_carry_the_engine_settings(results: dict[str, dict[str, Any]]) -> None:
    r = results["cuda-greedy"]
    assert "error" not in r, r.get("error")
    assert [m["class"] for m in r["made"]] == [
        "TurbomindEngineConfig",
        "VisionConfig",
        "GenerationConfig",
    ]
    tm = made(r, "TurbomindEngineConfig")
    assert (tm["tp"], tm["session_len"], tm["cache_max_entry_count"], tm["max_batch_size"]) == (
        2, 4096, 0.5, 4,
    )  # fmt: skip
    assert made(r, "VisionConfig")["max_batch_size"] == 3
    gen = made(r, "GenerationConfig")
    # temperature 0 is greedy: no sampling, top-1
    assert gen["do_sample"] is False and gen["top_k"] == 1, gen
    assert (gen["max_new_tokens"], gen["repetition_penalty"], gen["random_seed"]) == (77, 1.05, 3)
    assert r["pipeline"]["kwargs"] == ["backend_config", "vision_config"]
    assert r["pipeline"]["batches"] == [{"n": 2, "kwargs": ["gen_config"]}]
    assert r["pipeline"]["response_has_text"] and r["generated"] == ["caption 0", "caption 1"]
    assert r["pipeline"].get("closed") is True


def test_ascend_uses_the_pytorch_engine(results: dict[str, dict[str, Any]]) -> None:
    r = results["ascend-sampling"]
    assert "error" not in r, r.get("error")
    pt = made(r, "PytorchEngineConfig")
    assert pt["device_type"] == "ascend" and pt["tp"] == 2 and pt["max_batch_size"] == 4
    assert pt["session_len"] == 4096 and pt["cache_max_entry_count"] == 0.5
    gen = made(r, "GenerationConfig")
    assert gen["do_sample"] is True and gen["temperature"] == 0.7 and gen["top_p"] == 0.9
    assert gen["random_seed"] == 5 and gen["max_new_tokens"] == 64
    # sailvl's top_k 0 means "no top-k cut"; LMDeploy's default is 50, and its samplers
    # treat top_k <= 0 as no cut (pytorch/engine/logits_process.py), so 0 must be passed.
    assert gen["top_k"] == 0, f"top_k {gen['top_k']}: sampling would keep only the top 50"
    assert made(results["ascend-top-k"], "GenerationConfig")["top_k"] == 20


def test_settings_lmdeploy_refuses_are_named(results: dict[str, dict[str, Any]]) -> None:
    full = results["ascend-full-cache"].get("error", "")
    assert full.startswith("ValueError") and "engine.cache_max_entry_count" in full, full
    hot = results["hot-temperature"].get("error", "")
    assert hot.startswith("ValueError") and "generation.temperature" in hot, hot


@pytest.mark.parametrize(("case", "tiles"), [("cuda-greedy", 3), ("ascend-sampling", 1)])
def test_per_image_tile_budget_reaches_internvl_preprocessing(
    results: dict[str, dict[str, Any]], case: str, tiles: int
) -> None:
    r = results[case]
    budget = CASES[[c["name"] for c in CASES].index(case)]["engine"]["max_dynamic_patch"]
    # The data URL is consumed; the tile budget travels with the image as an int.
    assert r["image_params"] == [{"max_dynamic_patch": budget}]
    assert r["vision_model"] == "InternVLVisionModel"
    tokens_per_tile = 16  # tiny preset: (64 px / 8 px)^2 patches, pixel-shuffled by 0.5^2
    assert r["tiles"] == [tiles] and r["image_tokens"] == [tiles * tokens_per_tile]
    (image_token,) = set(r["image_token_id"])
    assert r["input_ids"].count(image_token) == tiles * tokens_per_tile
    # The tokenizer's own ChatML template (LMDeploy 0.10 has no named InternVL template
    # left): the image block, then the prompt, in one user turn.
    assert r["template"] == "hf"
    assert r["prompt"] == (
        f"<|im_start|>user\n<img><IMAGE_TOKEN></img>\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
    ), r["prompt"]


def test_captioner_images_install_the_pinned_version() -> None:
    """One pin: both captioner images install images/lmdeploy-requirements.txt (the file
    the contract venv is built from), no Dockerfile pins LMDeploy itself, and the
    package's `lmdeploy` extra admits the pinned version."""
    import tomllib

    from packaging.requirements import Requirement

    for name in ("captioner", "captioner-ascend"):
        text = (REPO / "images" / f"{name}.Dockerfile").read_text()
        assert "COPY images/lmdeploy-requirements.txt" in text, name
        assert re.search(r"pip install [^\n]*-r \S*lmdeploy-requirements\.txt", text), name
    for path in (REPO / "images").glob("*.Dockerfile"):
        assert "lmdeploy==" not in path.read_text(), f"{path.name} pins LMDeploy itself"
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["lmdeploy"]
    (spec,) = [Requirement(x) for x in extra if Requirement(x).name == "lmdeploy"]
    assert spec.specifier.contains(pinned_version()), (spec, pinned_version())
