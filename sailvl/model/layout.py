"""Checkpoint folders in either layout: read, convert, and load strictly.

A folder is read as it is on disk: `config.json` (its layout told by
`convert_config.detect_layout`) and the weights (`model.safetensors`, sharded
safetensors with an index, or the same as `pytorch_model*.bin`). Conversion holds the
whole state dict in memory once (bf16 InternVL2-8B: 16 GB), as transformers' own
conversion script does; shards are written one at a time.

Strict loading. transformers' `from_pretrained` leaves a weight the checkpoint lacks
randomly initialised and ignores a weight the model lacks, with only a log line: a
renamed layer or a checkpoint of the wrong layout then trains from noise without anyone
noticing. Every load here asks for the loading info and raises `IncompleteCheckpoint`
listing the missing, unexpected and mis-shaped names. A tied LM head is not "missing"
(transformers ties it and does not report it).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from sailvl.model import convert as C
from sailvl.model import convert_config as K

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")
# Never copied next to converted weights: they describe the other layout.
_NOT_COPIED = {"config.json", "generation_config.json", *INDEX_FILES, *SINGLE_FILES}
SHARD_BYTES = 1 << 30


class IncompleteCheckpoint(ValueError):
    """A checkpoint whose weight names do not match the model it is loaded into."""


def read_config(path: str) -> dict[str, Any]:
    with open(os.path.join(path, "config.json")) as fh:
        return dict(json.load(fh))


def _load_file(path: str) -> dict[str, Any]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return dict(load_file(path))
    import torch

    return dict(torch.load(path, map_location="cpu", weights_only=True))


def read_state(path: str) -> dict[str, Any]:
    """Every tensor of the checkpoint folder, by its name on disk."""
    for index in INDEX_FILES:
        if os.path.exists(os.path.join(path, index)):
            with open(os.path.join(path, index)) as fh:
                files = sorted(set(json.load(fh)["weight_map"].values()))
            state: dict[str, Any] = {}
            for name in files:
                state.update(_load_file(os.path.join(path, name)))
            return state
    for single in SINGLE_FILES:
        if os.path.exists(os.path.join(path, single)):
            return _load_file(os.path.join(path, single))
    raise FileNotFoundError(f"{path}: no model.safetensors / pytorch_model.bin (or index)")


def write_state(path: str, state: dict[str, Any], *, shard_bytes: int = SHARD_BYTES) -> None:
    """Safetensors shards (with an index when there are several), names sorted."""
    from safetensors.torch import save_file

    shards: list[dict[str, Any]] = [{}]
    size = 0
    seen: set[int] = set()
    for name in sorted(state):
        t = state[name].contiguous()
        if t.data_ptr() in seen:  # tied / aliased tensors: safetensors stores each once
            t = t.clone()
        seen.add(t.data_ptr())
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(path, fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    with open(os.path.join(path, INDEX_FILES[0]), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)


def copy_side_files(src: str, dst: str, *, code: bool = False) -> list[str]:
    """Tokenizer, processor and other non-weight files; `*.py` remote code only if `code`."""
    copied = []
    for name in sorted(os.listdir(src)):
        full = os.path.join(src, name)
        if not os.path.isfile(full) or name in _NOT_COPIED or name.endswith(".safetensors"):
            continue
        if name.endswith(".bin") or (name.endswith(".py") and not code) or name.startswith("_"):
            continue
        shutil.copy2(full, os.path.join(dst, name))
        copied.append(name)
    return copied


def image_token_id(path: str, default: int) -> int:
    """The `<IMG_CONTEXT>` id of the folder's tokenizer, `default` without one."""
    from sailvl.model.tokenizer import IMG_CONTEXT

    for name in ("tokenizer.json", "added_tokens.json"):
        full = os.path.join(path, name)
        if not os.path.exists(full):
            continue
        with open(full) as fh:
            data = json.load(fh)
        if name == "added_tokens.json" and IMG_CONTEXT in data:
            return int(data[IMG_CONTEXT])
        for tok in data.get("added_tokens", []) if isinstance(data, dict) else []:
            if tok.get("content") == IMG_CONTEXT:
                return int(tok["id"])
    return default


def native_config(path: str) -> dict[str, Any]:
    """The native config dict of a folder in any InternVL layout (weights not read)."""
    from sailvl.model.build import QWEN25_IMG_CONTEXT_ID

    config = read_config(path)
    layout = K.detect_layout(config)
    if layout == C.CHAT:
        token = image_token_id(path, QWEN25_IMG_CONTEXT_ID)
        return K.chat_to_native(config, image_token_id=token)
    if layout == C.INTERNVIT:
        return K.vision_to_native(config)
    if layout in (C.NATIVE, C.NATIVE_VISION):
        return config
    raise ValueError(f"{path}: config.json describes no InternVL layout (model_type "
                     f"{config.get('model_type')!r})")  # fmt: skip


def to_native(path: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(layout on disk, native state by module name, native config dict) of a folder."""
    layout = K.detect_layout(read_config(path))
    config = native_config(path)
    state = read_state(path)
    if layout == C.CHAT:
        return layout, C.chat_to_native(state, read_config(path)["llm_config"]), config
    if layout == C.INTERNVIT:
        return layout, C.vision_to_native(state), config
    if layout == C.NATIVE:
        return layout, C.native_names(state), config
    if layout == C.NATIVE_VISION:
        return layout, state, config
    raise ValueError(f"{path}: config.json describes no InternVL layout (model_type "
                     f"{config.get('model_type')!r})")  # fmt: skip


def check_loading(info: dict[str, Any], where: str) -> None:
    """Raise `IncompleteCheckpoint` if from_pretrained reported any name mismatch."""
    problems = []
    for key, what in (
        ("missing_keys", "missing (would stay randomly initialised)"),
        ("unexpected_keys", "unexpected (would be ignored)"),
        ("mismatched_keys", "of the wrong shape"),
    ):
        names = sorted(str(n if isinstance(n, str) else n[0]) for n in info.get(key) or [])
        if names:
            problems.append(f"{len(names)} weight(s) {what}: {names}")
    if problems:
        raise IncompleteCheckpoint(
            f"{where}: checkpoint does not match the model: " + "; ".join(problems)
        )


def model_class(layout: str) -> Any:
    from transformers import InternVLForConditionalGeneration, InternVLVisionModel

    return (
        InternVLVisionModel
        if layout in (C.INTERNVIT, C.NATIVE_VISION)
        else InternVLForConditionalGeneration
    )


def load_native(path: str, *, dtype: Any = None, attn_implementation: str = "sdpa") -> Any:
    """The native model of a folder in any InternVL layout, every weight checked."""
    config = read_config(path)
    layout = K.detect_layout(config)
    cls = model_class(layout)
    kw = {"dtype": dtype, "attn_implementation": attn_implementation, "output_loading_info": True}
    if layout in (C.NATIVE, C.NATIVE_VISION):
        model, info = cls.from_pretrained(path, **kw)
    else:
        _, state, native = to_native(path)
        cfg = cls.config_class.from_dict(native)
        model, info = cls.from_pretrained(None, config=cfg, state_dict=state, **kw)
    check_loading(info, path)
    return model


def convert_folder(src: str, dst: str, *, to: str, code_from: str | None = None) -> str:
    """Write `src` (any InternVL layout) to `dst` in layout `to` (native | original).

    Native output is written by the native class's `save_pretrained` after a strict
    load, so it is exactly what transformers itself writes. Original output gets the
    remote-code config (`auto_map`); its `*.py` files are copied from `code_from` (an
    original-layout folder such as the one converted from) when given, since the
    suite does not ship InternVL's code. Returns the layout written.
    """
    layout = K.detect_layout(read_config(src))
    os.makedirs(dst, exist_ok=True)
    if to == "native":
        if layout in (C.NATIVE, C.NATIVE_VISION):
            raise ValueError(f"{src}: already in the native layout")
        load_native(src).save_pretrained(dst, max_shard_size="1GB")
        copy_side_files(src, dst)
        return C.NATIVE_VISION if layout == C.INTERNVIT else C.NATIVE
    if to != "original":
        raise ValueError(f"to: {to!r} is not one of native, original")
    if layout in (C.CHAT, C.INTERNVIT):
        raise ValueError(f"{src}: already in the original layout")
    _, state, config = to_native(src)
    if layout == C.NATIVE:
        cfg = K.native_to_chat(config)
        out = C.native_to_chat(state, tied=K.native_tied(config), llm_config=cfg["llm_config"])
    else:
        out, cfg = C.vision_to_original(state), K.vision_to_original(config)
        cfg["auto_map"] = {
            "AutoConfig": "configuration_intern_vit.InternVisionConfig",
            "AutoModel": "modeling_intern_vit.InternVisionModel",
        }
    write_state(dst, out)
    with open(os.path.join(dst, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2, sort_keys=True)
    copy_side_files(src, dst)
    if code_from:
        for name in sorted(os.listdir(code_from)):
            if name.endswith(".py"):
                shutil.copy2(os.path.join(code_from, name), os.path.join(dst, name))
    return C.CHAT if layout == C.NATIVE else C.INTERNVIT


def add_arguments(p: Any) -> None:
    """`sailvl convert SRC DST --to native|original` (local folders)."""
    p.add_argument("src", help="checkpoint folder (InternVL-Chat, InternViT or native)")
    p.add_argument("dst", help="folder to write")
    p.add_argument("--to", choices=("native", "original"), default=None,
                   help="target layout (default: the other one)")  # fmt: skip
    p.add_argument("--code-from", help="original layout: copy InternVL's *.py from this folder")


def main(args: Any) -> int:
    """Exit 2 with the reason on bad input (wrong layout, unknown names, unsupported)."""
    import sys

    try:
        layout = K.detect_layout(read_config(args.src))
        to = args.to or ("native" if layout in (C.CHAT, C.INTERNVIT) else "original")
        written = convert_folder(args.src, args.dst, to=to, code_from=args.code_from)
    except (OSError, ValueError) as err:
        print(f"sailvl convert: {err}", file=sys.stderr)
        return 2
    print(f"{args.src} ({layout}) -> {args.dst} ({written})")
    return 0
