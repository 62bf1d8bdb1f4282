"""Original InternVL layouts <-> native: names, tensors, configs, forwards, strict loading.

The original-layout checkpoints are written here, by the test, from the structure of
the published configs (InternViT-300M-448px: layer-norm blocks with qkv bias;
InternViT-6B: RMS-norm blocks with q/k norms; an InternVL-Chat model with a Qwen2 LLM),
scaled down to the tiny preset's sizes. Their forward is checked against a reference
InternViT written below from the original model's formulas (fused qkv unbound as
q | k | v, layer scales ls1 / ls2), not against the converter's own output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

V = {"hidden": 64, "layers": 2, "heads": 4, "inter": 128, "image": 64, "patch": 8}


def internvit_config(*, six_b: bool = False) -> dict[str, Any]:
    """InternViT config.json (300M-448px shape, or 6B's RMS norm + qk norm), scaled down."""
    return {
        "architectures": ["InternVisionModel"],
        "auto_map": {"AutoConfig": "configuration_intern_vit.InternVisionConfig"},
        "model_type": "intern_vit_6b",
        "hidden_size": V["hidden"],
        "num_hidden_layers": V["layers"],
        "num_attention_heads": V["heads"],
        "intermediate_size": V["inter"],
        "image_size": V["image"],
        "patch_size": V["patch"],
        "num_channels": 3,
        "qkv_bias": not six_b,
        "qk_normalization": six_b,
        "norm_type": "rms_norm" if six_b else "layer_norm",
        "layer_norm_eps": 1e-6,
        "hidden_act": "gelu",
        "dropout": 0.0,
        "drop_path_rate": 0.0,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "initializer_factor": 0.1,
        "use_flash_attn": True,
        "torch_dtype": "float32",
    }


def internvit_state(cfg: dict[str, Any], seed: int = 0, prefix: str = "") -> dict[str, Any]:
    """Random InternViT tensors under the original names and shapes."""
    g = torch.Generator().manual_seed(seed)
    d, i, p = cfg["hidden_size"], cfg["intermediate_size"], cfg["patch_size"]
    n = (cfg["image_size"] // p) ** 2

    def r(*shape: int) -> Any:
        return torch.randn(*shape, generator=g) * 0.2

    s = {
        "embeddings.class_embedding": r(1, 1, d),
        "embeddings.patch_embedding.weight": r(d, 3, p, p),
        "embeddings.patch_embedding.bias": r(d),
        "embeddings.position_embedding": r(1, n + 1, d),
    }
    for k in range(cfg["num_hidden_layers"]):
        b = f"encoder.layers.{k}."
        s |= {b + "attn.qkv.weight": r(3 * d, d), b + "attn.proj.weight": r(d, d)}
        s |= {b + "attn.proj.bias": r(d), b + "ls1": r(d), b + "ls2": r(d)}
        s |= {b + "mlp.fc1.weight": r(i, d), b + "mlp.fc1.bias": r(i)}
        s |= {b + "mlp.fc2.weight": r(d, i), b + "mlp.fc2.bias": r(d)}
        s |= {b + "norm1.weight": 1 + r(d), b + "norm2.weight": 1 + r(d)}
        if cfg["qkv_bias"]:
            s[b + "attn.qkv.bias"] = r(3 * d)
        if cfg["norm_type"] == "layer_norm":
            s |= {b + "norm1.bias": r(d), b + "norm2.bias": r(d)}
        if cfg["qk_normalization"]:
            s |= {b + "attn.q_norm.weight": 1 + r(d), b + "attn.k_norm.weight": 1 + r(d)}
    return {prefix + k: v for k, v in s.items()}


def qwen2_llm_config(*, tied: bool = False) -> dict[str, Any]:
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 320,
        "max_position_embeddings": 8192,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": tied,
        "torch_dtype": "float32",
    }


def write_folder(path: Path, config: dict[str, Any], state: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.contiguous() for k, v in state.items()}, str(path / "model.safetensors"))
    return path


def write_internvit(path: Path, *, six_b: bool = False, seed: int = 0) -> Path:
    cfg = internvit_config(six_b=six_b)
    return write_folder(path, cfg, internvit_state(cfg, seed))


def write_internvl_chat(path: Path, *, tied: bool = False, seed: int = 0) -> Path:
    """An InternVL-Chat (InternVLChatModel) folder: InternViT + mlp1 + Qwen2, tiny tokenizer."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from sailvl.model.tokenizer import build_tiny_tokenizer

    vcfg, lcfg = internvit_config(), qwen2_llm_config(tied=tied)
    state = internvit_state(vcfg, seed, prefix="vision_model.")
    torch.manual_seed(seed)
    llm = Qwen2ForCausalLM(Qwen2Config(**lcfg))
    state |= {f"language_model.{k}": v.clone() for k, v in llm.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1)
    w, t = V["hidden"] * 4, lcfg["hidden_size"]
    for idx, shape in (("0", (w,)), ("1", (t, w)), ("3", (t, t))):
        state[f"mlp1.{idx}.weight"] = torch.randn(*shape, generator=g) * 0.1 + (idx == "0")
        state[f"mlp1.{idx}.bias"] = torch.randn(shape[0], generator=g) * 0.1
    config = {
        "architectures": ["InternVLChatModel"],
        "model_type": "internvl_chat",
        "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"},
        "vision_config": vcfg,
        "llm_config": lcfg,
        "downsample_ratio": 0.5,
        "force_image_size": V["image"],
        "select_layer": -1,
        "ps_version": "v2",
        "template": "internvl2_5",
        "dynamic_image_size": True,
        "use_thumbnail": True,
        "min_dynamic_patch": 1,
        "max_dynamic_patch": 6,
        "torch_dtype": "float32",
    }
    write_folder(path, config, state)
    build_tiny_tokenizer().save_pretrained(str(path))
    (path / "modeling_internvl_chat.py").write_text("# stands in for InternVL's remote code\n")
    return path


# --- a reference InternViT forward, from the original model's formulas ---------------


def _norm(x: Any, s: dict[str, Any], name: str, cfg: dict[str, Any]) -> Any:
    F = torch.nn.functional
    eps = cfg["layer_norm_eps"]
    if cfg["norm_type"] == "layer_norm":
        return F.layer_norm(x, x.shape[-1:], s[name + ".weight"], s[name + ".bias"], eps)
    return s[name + ".weight"] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def reference_internvit(s: dict[str, Any], cfg: dict[str, Any], pixels: Any) -> Any:
    F = torch.nn.functional
    p, h = cfg["patch_size"], cfg["num_attention_heads"]
    x = F.conv2d(pixels, s["embeddings.patch_embedding.weight"],
                 s["embeddings.patch_embedding.bias"], stride=p)  # fmt: skip
    x = x.flatten(2).transpose(1, 2)
    cls = s["embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + s["embeddings.position_embedding"]
    B, N, C = x.shape
    for k in range(cfg["num_hidden_layers"]):
        b = f"encoder.layers.{k}."
        y = _norm(x, s, b + "norm1", cfg)
        qkv = F.linear(y, s[b + "attn.qkv.weight"], s.get(b + "attn.qkv.bias"))
        q, kk, v = qkv.reshape(B, N, 3, h, C // h).permute(2, 0, 3, 1, 4).unbind(0)
        if cfg["qk_normalization"]:
            rms = {"norm_type": "rms_norm", "layer_norm_eps": cfg["layer_norm_eps"]}
            q = _norm(q.transpose(1, 2).flatten(-2), s, b + "attn.q_norm", rms)
            kk = _norm(kk.transpose(1, 2).flatten(-2), s, b + "attn.k_norm", rms)
            q = q.view(B, N, h, C // h).transpose(1, 2)
            kk = kk.view(B, N, h, C // h).transpose(1, 2)
        att = ((q * (C // h) ** -0.5) @ kk.transpose(-2, -1)).softmax(-1)
        out = (att @ v).transpose(1, 2).reshape(B, N, C)
        x = x + F.linear(out, s[b + "attn.proj.weight"], s[b + "attn.proj.bias"]) * s[b + "ls1"]
        y = _norm(x, s, b + "norm2", cfg)
        y = F.linear(F.gelu(F.linear(y, s[b + "mlp.fc1.weight"], s[b + "mlp.fc1.bias"])),
                     s[b + "mlp.fc2.weight"], s[b + "mlp.fc2.bias"])  # fmt: skip
        x = x + y * s[b + "ls2"]
    return x


def reference_image_features(state: dict[str, Any], cfg: dict[str, Any], pixels: Any) -> Any:
    """InternVLChatModel.extract_feature: ViT, drop CLS, pixel shuffle v2, mlp1."""
    F = torch.nn.functional
    vit = {k[len("vision_model.") :]: v for k, v in state.items() if k.startswith("vision_model.")}
    x = reference_internvit(vit, cfg["vision_config"], pixels)[:, 1:]
    n, side = x.shape[0], int(x.shape[1] ** 0.5)
    x = x.reshape(n, side, side, -1)
    n, w, h, c = x.shape  # pixel shuffle, scale 0.5, ps_version v2
    x = x.view(n, w, h // 2, c * 2).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, h // 2, w // 2, c * 4).permute(0, 2, 1, 3).reshape(n, -1, c * 4)
    x = F.layer_norm(x, x.shape[-1:], state["mlp1.0.weight"], state["mlp1.0.bias"], 1e-5)
    x = F.gelu(F.linear(x, state["mlp1.1.weight"], state["mlp1.1.bias"]))
    return F.linear(x, state["mlp1.3.weight"], state["mlp1.3.bias"])


# --- tests -------------------------------------------------------------------------


def _equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert sorted(a) == sorted(b)
    bad = [k for k in a if a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
    assert not bad, bad


@pytest.mark.parametrize("six_b", [False, True], ids=["300m", "6b"])
def test_internvit_round_trip_and_forward(tmp_path: Path, six_b: bool) -> None:
    from sailvl.model.layout import convert_folder, load_native, read_state

    src = write_internvit(tmp_path / "orig", six_b=six_b)
    convert_folder(str(src), str(tmp_path / "native"), to="native")
    convert_folder(str(tmp_path / "native"), str(tmp_path / "back"), to="original")
    _equal(read_state(str(src)), read_state(str(tmp_path / "back")))
    back_cfg = json.loads((tmp_path / "back" / "config.json").read_text())
    orig_cfg = internvit_config(six_b=six_b)
    for key in ("hidden_size", "qkv_bias", "qk_normalization", "norm_type", "image_size"):
        assert back_cfg[key] == orig_cfg[key], key

    model = load_native(str(tmp_path / "native"), attn_implementation="eager").eval()
    pixels = torch.randn(2, 3, V["image"], V["image"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model(pixel_values=pixels).last_hidden_state
        want = reference_internvit(read_state(str(src)), orig_cfg, pixels)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_internvl_chat_round_trip_and_forward(tmp_path: Path, tied: bool) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from sailvl.model.layout import convert_folder, read_state
    from sailvl.model.loader import load_pretrained

    src = write_internvl_chat(tmp_path / "orig", tied=tied)
    assert convert_folder(str(src), str(tmp_path / "native"), to="native") == "native"
    assert not list((tmp_path / "native").glob("*.py"))  # remote code stays behind
    convert_folder(str(tmp_path / "native"), str(tmp_path / "back"), to="original",
                   code_from=str(src))  # fmt: skip
    orig = read_state(str(src))
    _equal(orig, read_state(str(tmp_path / "back")))
    back_cfg = json.loads((tmp_path / "back" / "config.json").read_text())
    assert back_cfg["architectures"] == ["InternVLChatModel"]
    assert back_cfg["llm_config"]["tie_word_embeddings"] is tied
    assert back_cfg["max_dynamic_patch"] == 6 and back_cfg["ps_version"] == "v2"
    assert (tmp_path / "back" / "modeling_internvl_chat.py").exists()

    # Loaded from the original folder directly (automatic detection) and from the
    # converted one: both equal the reference built from the original tensors.
    cfg = json.loads((src / "config.json").read_text())
    pixels = torch.randn(2, 3, V["image"], V["image"], generator=torch.Generator().manual_seed(2))
    ids = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(3))
    llm = Qwen2ForCausalLM(Qwen2Config(**cfg["llm_config"]))
    llm.load_state_dict({k[len("language_model.") :]: v for k, v in orig.items()
                         if k.startswith("language_model.")}, strict=not tied)  # fmt: skip
    with torch.no_grad():
        want_img = reference_image_features(orig, cfg, pixels)
        want_logits = llm.eval()(input_ids=ids).logits
    for folder in (src, tmp_path / "native"):
        model, tok = load_pretrained(str(folder), attn_implementation="eager")
        model.eval()
        assert model.config.image_token_id == tok.convert_tokens_to_ids("<IMG_CONTEXT>")
        with torch.no_grad():
            got_img = model.model.get_image_features(pixel_values=pixels)
            got_logits = model(input_ids=ids).logits
        torch.testing.assert_close(got_img, want_img, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got_logits, want_logits, rtol=1e-4, atol=1e-4)


def test_native_to_original_to_native_is_exact(tmp_path: Path) -> None:
    from sailvl.model.build import build_model
    from sailvl.model.layout import convert_folder, load_native

    model = build_model("tiny", seed=5)
    model.save_pretrained(tmp_path / "native")
    convert_folder(str(tmp_path / "native"), str(tmp_path / "orig"), to="original")
    convert_folder(str(tmp_path / "orig"), str(tmp_path / "again"), to="native")
    again = load_native(str(tmp_path / "again"))
    _equal(model.state_dict(), again.state_dict())


def test_unknown_names_and_v1_pixel_shuffle_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sailvl.cli import main as cli
    from sailvl.model import convert, convert_config

    state = internvit_state(internvit_config()) | {"encoder.layers.0.attn.rel_pos": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"encoder\.layers\.0\.attn\.rel_pos"):
        convert.vision_to_native(state)
    cfg = {"vision_config": internvit_config(), "llm_config": qwen2_llm_config(),
           "ps_version": "v1"}  # fmt: skip
    with pytest.raises(ValueError, match="ps_version"):
        convert_config.chat_to_native(cfg, image_token_id=1)
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "config.json").write_text(json.dumps(cfg))
    assert cli(["convert", str(tmp_path / "v1"), str(tmp_path / "out")]) == 2
    assert "ps_version" in capsys.readouterr().err
    cfg |= {"ps_version": "v2", "llm_config": {"architectures": ["Phi3ForCausalLM"]}}
    with pytest.raises(ValueError, match="Phi3ForCausalLM"):
        convert_config.chat_to_native(cfg, image_token_id=1)


# --- strict loading: what used to load silently ------------------------------------


def test_loader_refuses_missing_and_unexpected_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from sailvl.model.build import build_model
    from sailvl.model.loader import load_pretrained
    from sailvl.model.tokenizer import build_tiny_tokenizer

    build_model("tiny").save_pretrained(tmp_path)
    build_tiny_tokenizer().save_pretrained(str(tmp_path))
    state = load_file(str(tmp_path / "model.safetensors"))
    state.pop("vision_tower.encoder.layer.1.lambda_2")
    state["vision_tower.encoder.layer.1.extra_scale"] = torch.ones(3)
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError) as err:
        load_pretrained(str(tmp_path))
    assert "model.vision_tower.encoder.layer.1.lambda_2" in str(err.value)
    assert "extra_scale" in str(err.value)


def test_stage1_parts_detect_original_internvit_and_refuse_gaps(tmp_path: Path) -> None:
    from sailvl.model.build import build_model
    from sailvl.model.checkpoint import save_parts
    from sailvl.model.loader import ModelConfig, load_model
    from sailvl.model.tokenizer import build_tiny_tokenizer

    vit = write_internvit(tmp_path / "internvit")
    save_parts(build_model("tiny"), build_tiny_tokenizer(), str(tmp_path / "v"),
               str(tmp_path / "llm"))  # fmt: skip
    model, _ = load_model(ModelConfig(preset="tiny", vision_uri=str(vit),
                                      llm_uri=str(tmp_path / "llm")))  # fmt: skip
    want = internvit_state(internvit_config())
    got = model.model.vision_tower.state_dict()
    assert torch.equal(got["encoder.layer.1.lambda_1"], want["encoder.layers.1.ls1"])
    q, k, v = want["encoder.layers.0.attn.qkv.weight"].chunk(3)
    assert torch.equal(got["encoder.layer.0.attention.k_proj.weight"], k)

    from safetensors.torch import load_file, save_file

    llm = tmp_path / "llm" / "model.safetensors"
    state = load_file(str(llm))
    state.pop("model.norm.weight")
    save_file(state, str(llm), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"model\.norm\.weight"):
        load_model(ModelConfig(preset="tiny", vision_uri=str(vit), llm_uri=str(tmp_path / "llm")))


# --- InternLM2 LLMs (InternVL2-8B and kin): Llama in the native model --------------

LM2 = {"hidden": 64, "heads": 4, "kv": 2, "inter": 96, "layers": 2, "vocab": 320}


def internlm2_config() -> dict[str, Any]:
    return {
        "architectures": ["InternLM2ForCausalLM"],
        "model_type": "internlm2",
        "auto_map": {"AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
        "hidden_size": LM2["hidden"],
        "num_attention_heads": LM2["heads"],
        "num_key_value_heads": LM2["kv"],
        "intermediate_size": LM2["inter"],
        "num_hidden_layers": LM2["layers"],
        "vocab_size": LM2["vocab"],
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000,
        "rope_scaling": None,
        "max_position_embeddings": 2048,
        "hidden_act": "silu",
        "bias": False,
        "tie_word_embeddings": False,
        "attn_implementation": "eager",
    }


def internlm2_state(seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    h, i, d = LM2["hidden"], LM2["inter"], LM2["hidden"] // LM2["heads"]

    def r(*shape: int) -> Any:
        return torch.randn(*shape, generator=g) * 0.2

    s = {"model.tok_embeddings.weight": r(LM2["vocab"], h), "model.norm.weight": 1 + r(h)}
    s["output.weight"] = r(LM2["vocab"], h)
    for k in range(LM2["layers"]):
        b = f"model.layers.{k}."
        s |= {b + "attention.wqkv.weight": r((LM2["heads"] + 2 * LM2["kv"]) * d, h)}
        s |= {b + "attention.wo.weight": r(h, h), b + "feed_forward.w1.weight": r(i, h)}
        s |= {b + "feed_forward.w3.weight": r(i, h), b + "feed_forward.w2.weight": r(h, i)}
        s |= {b + "attention_norm.weight": 1 + r(h), b + "ffn_norm.weight": 1 + r(h)}
    return s


def reference_internlm2(s: dict[str, Any], cfg: dict[str, Any], ids: Any) -> Any:
    """InternLM2's forward from its formulas: wqkv viewed (kv, groups + 2, head_dim)."""
    F = torch.nn.functional
    nh, kv, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rms_norm_eps"]
    hid = cfg["hidden_size"]
    d, g, T = hid // nh, nh // kv, ids.shape[1]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2).float() / d))
    f = torch.outer(torch.arange(T).float(), inv)
    cos, sin = torch.cat([f, f], -1).cos(), torch.cat([f, f], -1).sin()

    def rot(t: Any) -> Any:
        return t * cos + torch.cat([-t[..., d // 2 :], t[..., : d // 2]], -1) * sin

    def rms(t: Any, w: Any) -> Any:
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps))

    mask = torch.full((T, T), float("-inf")).triu(1)
    x = s["model.tok_embeddings.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        b = f"model.layers.{i}."
        y = rms(x, s[b + "attention_norm.weight"])
        qkv = F.linear(y, s[b + "attention.wqkv.weight"]).view(1, T, kv, g + 2, d)
        q = rot(qkv[..., :g, :].reshape(1, T, nh, d).transpose(1, 2))
        k = rot(qkv[..., -2, :].transpose(1, 2)).repeat_interleave(g, dim=1)
        v = qkv[..., -1, :].transpose(1, 2).repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-2, -1) / d**0.5 + mask).softmax(-1)
        x = x + F.linear((att @ v).transpose(1, 2).reshape(1, T, hid), s[b + "attention.wo.weight"])
        y = rms(x, s[b + "ffn_norm.weight"])
        up = F.silu(F.linear(y, s[b + "feed_forward.w1.weight"]))
        up = up * F.linear(y, s[b + "feed_forward.w3.weight"])
        x = x + F.linear(up, s[b + "feed_forward.w2.weight"])
    return F.linear(rms(x, s["model.norm.weight"]), s["output.weight"])


def test_internvl_chat_with_internlm2_llm(tmp_path: Path) -> None:
    from sailvl.model.layout import convert_folder, read_state
    from sailvl.model.loader import load_pretrained

    src = write_internvl_chat(tmp_path / "orig")
    cfg = json.loads((src / "config.json").read_text())
    state = {k: v for k, v in read_state(str(src)).items() if not k.startswith("language_model.")}
    state |= {f"language_model.{k}": v for k, v in internlm2_state(4).items()}
    g = torch.Generator().manual_seed(9)
    state["mlp1.1.weight"] = torch.randn(LM2["hidden"], V["hidden"] * 4, generator=g) * 0.1
    for key in ("mlp1.1.bias", "mlp1.3.bias"):
        state[key] = torch.randn(LM2["hidden"], generator=g) * 0.1
    state["mlp1.3.weight"] = torch.randn(LM2["hidden"], LM2["hidden"], generator=g) * 0.1
    cfg["llm_config"] = internlm2_config()
    write_folder(src, cfg, state)

    convert_folder(str(src), str(tmp_path / "native"), to="native")
    native_cfg = json.loads((tmp_path / "native" / "config.json").read_text())
    assert native_cfg["text_config"]["model_type"] == "llama"
    convert_folder(str(tmp_path / "native"), str(tmp_path / "back"), to="original")
    _equal(state, read_state(str(tmp_path / "back")))
    back = json.loads((tmp_path / "back" / "config.json").read_text())["llm_config"]
    assert back["architectures"] == ["InternLM2ForCausalLM"] and back["num_key_value_heads"] == 2

    ids = torch.randint(0, 256, (1, 10), generator=torch.Generator().manual_seed(5))
    llm = {k[len("language_model.") :]: v for k, v in state.items() if "language_model." in k}
    want = reference_internlm2(llm, internlm2_config(), ids)
    model, _ = load_pretrained(str(src), attn_implementation="eager")
    with torch.no_grad():
        got = model.eval()(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
