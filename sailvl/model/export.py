"""`sailvl export`: a DeepSpeed training checkpoint -> a standalone model folder.

A stage writes `<output>/step-<n>/` units while it trains (`sailvl.train.checkpoint`):
DeepSpeed's files, sharded per rank under ZeRO-2 (optimizer state) or ZeRO-3 (the
parameters themselves), and no config or tokenizer. Evaluating an intermediate
checkpoint needs what `final/` has: one set of whole weights, config.json, tokenizer,
processor config. Export builds that:

1. The unit (or the one `latest` names, given the stage output) is localised and
   DeepSpeed's own `zero_to_fp32.get_fp32_state_dict_from_zero_checkpoint` merges the
   rank shards into fp32 tensors by module name, frozen parameters included (ZeRO-3
   stores them as per-rank fragments as well).
2. The architecture comes from the stage's starting point without loading its weights:
   `--job-config` (the TrainStage job config the run was given: the preset and the
   vision / LLM / init URIs, see `sailvl.model.loader.model_skeleton`) or `--model` (any
   folder with the same architecture and the tokenizer, e.g. the stage's init). The
   embedding rows are taken from the merged weights, since a stage may have grown them.
3. The weights go into that architecture through the strict loader check (every name
   present, none extra, shapes equal), and the folder is written by
   `sailvl.model.checkpoint.save_checkpoint` (commit marker last), natively, or in the
   original InternVL layout with `--layout original` for servers that expect it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

DTYPES = ("float32", "bfloat16", "float16")


def resolve_unit(uri: str) -> str:
    """`uri` itself if it is a step unit, else the committed unit `latest` names in it."""
    from sailvl.storage import is_committed, join, open_store, read_latest

    store = open_store(uri)
    if any("/" not in k and k.endswith("_model_states.pt") for k in store.list("")):
        return uri
    unit = read_latest(store)
    if not unit or not is_committed(store, unit):
        raise ValueError(f"src: {uri} is neither a step checkpoint nor a stage output with one")
    return join(uri, unit)


def consolidate(unit_uri: str) -> dict[str, Any]:
    """fp32 tensors by module name, merged from the rank shards of a ZeRO-2/3 unit."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    from sailvl.model.checkpoint import localize

    with localize(unit_uri) as path:
        parent, tag = os.path.split(os.path.abspath(path))
        return dict(get_fp32_state_dict_from_zero_checkpoint(parent, tag=tag))


def skeleton(model: str | None, job_config: str | None) -> tuple[Any, Any]:
    """(InternVLConfig, tokenizer) of the run, from `--model` or `--job-config`."""
    from sailvl.model.loader import ModelConfig, model_skeleton

    if bool(model) == bool(job_config):
        raise ValueError("give exactly one of --model (a model folder) or --job-config")
    if job_config:
        from pathlib import Path

        from sailvl.api.jobconfig import load_job_config

        kind, _, spec = load_job_config(Path(job_config))
        if kind != "TrainStage":
            raise ValueError(f"--job-config: {job_config} is a {kind}, not a TrainStage")
        m = spec.model
        cfg = ModelConfig(preset=m.preset, init_uri=m.init, vision_uri=m.vision, llm_uri=m.llm)
    else:
        cfg = ModelConfig(init_uri=model)
    return model_skeleton(cfg)


def build(state: dict[str, Any], config: Any, tokenizer: Any, dtype: str) -> Any:
    """The native model holding `state`, every weight name checked."""
    import torch
    from transformers import InternVLForConditionalGeneration

    from sailvl.model.layout import check_loading
    from sailvl.model.tokenizer import IMG_CONTEXT

    rows = state["model.language_model.embed_tokens.weight"].shape[0]
    config.text_config.vocab_size = int(rows)
    config.image_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    model, info = InternVLForConditionalGeneration.from_pretrained(
        None, config=config, state_dict=state, output_loading_info=True,
        dtype=getattr(torch, dtype),
    )  # fmt: skip
    check_loading(info, "DeepSpeed checkpoint")
    return model


def export(
    src: str,
    dst: str,
    *,
    model: str | None = None,
    job_config: str | None = None,
    layout: str = "native",
    dtype: str = "float32",
    code_from: str | None = None,
) -> str:
    """Export the step unit at `src` (or the stage output's latest) to `dst`; return it."""
    from sailvl.model.checkpoint import save_checkpoint, upload_dir

    if dtype not in DTYPES:
        raise ValueError(f"--dtype: {dtype!r} is not one of {DTYPES}")
    if layout not in ("native", "original"):
        raise ValueError(f"--layout: {layout!r} is not one of native, original")
    config, tokenizer = skeleton(model, job_config)
    unit = resolve_unit(src)
    net = build(consolidate(unit), config, tokenizer, dtype)
    if layout == "native":
        save_checkpoint(net, tokenizer, dst)
        return unit
    from sailvl.model.layout import convert_folder

    with tempfile.TemporaryDirectory(prefix="sailvl-export-") as tmp:
        native, orig = os.path.join(tmp, "native"), os.path.join(tmp, "original")
        net.save_pretrained(native)
        tokenizer.save_pretrained(native)
        convert_folder(native, orig, to="original", code_from=code_from)
        upload_dir(orig, dst)
    return unit


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="step checkpoint URI (<output>/step-N) or a stage output URI")
    p.add_argument("dst", help="folder or URI to write the model to")
    p.add_argument("--job-config", help="the TrainStage job config of the run (architecture)")
    p.add_argument("--model", help="or: a model folder / URI with the same architecture")
    p.add_argument("--layout", choices=("native", "original"), default="native")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--code-from", help="original layout: copy InternVL's *.py from this folder")


def main(args: Any) -> int:
    """Exit 2 with the reason on bad input (no checkpoint, mismatched architecture)."""
    import sys

    try:
        unit = export(
            args.src, args.dst, model=args.model, job_config=args.job_config,
            layout=args.layout, dtype=args.dtype, code_from=args.code_from,
        )  # fmt: skip
    except (OSError, ValueError) as err:
        print(f"sailvl export: {err}", file=sys.stderr)
        return 2
    print(f"exported {unit} -> {args.dst} ({args.layout})")
    return 0
