"""Hugging Face format checkpoints on local folders and object stores.

A SAIL-VL checkpoint is a folder `save_pretrained` writes (config.json, safetensors,
tokenizer files). transformers reads and writes local folders only, so for a remote URI
(`s3://`, `hdfs://`) the folder is staged through a temporary directory:

- `download_to_temp(uri)` copies every object under the URI into a temp dir (through
  `sailvl.storage.open_store`, which retries transient errors), and `localize(uri)`
  wraps it as a context manager that removes the copy afterwards. A `file://` URI or a
  plain path is used in place, with no copy.
- `save_checkpoint` writes to a temp dir, uploads each file (atomic per object), and
  writes the commit marker last (`sailvl.storage.mark_committed`): a reader that
  checks the marker never loads a half-uploaded checkpoint. Shards are capped at 1 GB
  so an upload never holds more than one shard in memory.

The marker is written but not required on load: externally prepared folders (a
downloaded Qwen2.5, InternViT) have none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

MAX_SHARD_SIZE = "1GB"


def is_local(uri: str) -> bool:
    """True for a plain path or a `file://` URI."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    """The filesystem path of a local URI."""
    return uri[len("file://") :] if uri.startswith("file://") else uri


def download_to_temp(uri: str, *, prefix: str = "sailvl-ckpt-") -> str:
    """Copy every object under a remote `uri` into a new temp dir and return its path.

    The caller owns the directory (see `localize`). NotFoundError-style ValueError if
    the URI holds no objects: loading an empty prefix is always a wrong URI.
    """
    from sailvl.storage import open_store

    store = open_store(uri)
    tmp = tempfile.mkdtemp(prefix=prefix)
    count = 0
    try:
        for key in store.list(""):
            dest = os.path.join(tmp, *key.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with store.open(key) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, length=8 << 20)
            count += 1
        if count == 0:
            raise ValueError(f"uri: no objects under {uri!r}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


@contextlib.contextmanager
def localize(uri: str) -> Iterator[str]:
    """A local folder holding the checkpoint at `uri` for the duration of the block."""
    if is_local(uri):
        path = local_path(uri)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"checkpoint folder {path!r} does not exist")
        yield path
        return
    tmp = download_to_temp(uri)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def upload_dir(local_dir: str, uri: str) -> dict[str, int]:
    """Copy a local folder to `uri` file by file, then write the commit marker."""
    from sailvl.storage import mark_committed, open_store

    store = open_store(uri)
    sizes: dict[str, int] = {}
    for dirpath, _, filenames in os.walk(local_dir):
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, local_dir).replace(os.sep, "/")
            with open(path, "rb") as f:
                data = f.read()
            store.write_bytes(key, data)
            sizes[key] = len(data)
    mark_committed(store, "", sizes)
    return sizes


def save_processor_config(model: Any, folder: str, *, max_tiles: int = 12) -> None:
    """preprocessor_config.json for the model's tile size (transformers' InternVL processor).

    `GotOcr2ImageProcessor` with `crop_to_patches` is InternVL's dynamic tiling
    (ImageNet mean / std, thumbnail added); with it the folder is usable on its own by
    tools that build the processor from the folder, not only by this suite.
    """
    from transformers import GotOcr2ImageProcessor

    from sailvl.model.processor import IMAGENET_MEAN, IMAGENET_STD

    side = int(model.config.vision_config.image_size[0])
    GotOcr2ImageProcessor(
        size={"height": side, "width": side},
        crop_to_patches=True,
        min_patches=1,
        max_patches=max_tiles,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    ).save_pretrained(folder)


def save_checkpoint(model: Any, tokenizer: Any, uri: str) -> dict[str, int]:
    """Save model + tokenizer + processor config in Hugging Face format at `uri`; return
    the file sizes."""
    with tempfile.TemporaryDirectory(prefix="sailvl-save-") as tmp:
        model.save_pretrained(tmp, max_shard_size=MAX_SHARD_SIZE, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if hasattr(model.config, "vision_config"):
            save_processor_config(model, tmp)
        return upload_dir(tmp, uri)


def save_parts(model: Any, tokenizer: Any, vision_uri: str, llm_uri: str) -> None:
    """Save the vision tower and the LLM as two standalone HF checkpoints.

    The inverse of `sailvl.model.loader.load_from_parts`: the vision folder loads with
    `InternVLVisionModel.from_pretrained`, the LLM folder (with the tokenizer) with
    `AutoModelForCausalLM.from_pretrained`. The demo uses it to stand in for the
    InternViT and Qwen2.5 downloads a real stage 1 starts from.
    """
    import torch
    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory(prefix="sailvl-vision-") as tmp:
        model.model.vision_tower.save_pretrained(tmp, max_shard_size=MAX_SHARD_SIZE)
        upload_dir(tmp, vision_uri)
    text_config = model.config.text_config
    with torch.device("meta"):
        llm = AutoModelForCausalLM.from_config(text_config)
    state = {f"model.{k}": v for k, v in model.model.language_model.state_dict().items()}
    state["lm_head.weight"] = model.lm_head.weight
    llm.load_state_dict(state, assign=True, strict=True)
    if text_config.tie_word_embeddings:
        llm.tie_weights()
    with tempfile.TemporaryDirectory(prefix="sailvl-llm-") as tmp:
        llm.save_pretrained(tmp, max_shard_size=MAX_SHARD_SIZE)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        upload_dir(tmp, llm_uri)
