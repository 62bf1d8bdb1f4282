"""The training loop of one stage (runs in every worker; see `sailvl.train.main`).

One optimizer step, on every rank:

1. take `global_batch / world` samples from this rank's stream (reader position p);
2. pack them (fresh accumulator, flushed) and pad the row list to the group's maximum
   with zero-weight copies (`batches.equalize`), so every rank runs as many forwards;
3. all-reduce the step's loss-weight sum W; each micro-batch's loss is
   `sum(w * ce) / W * world`: DeepSpeed averages gradients over ranks, so the update
   uses exactly the weighted mean over the whole global batch, however the samples
   fell into micro-batches;
4. `engine.backward(loss, scale_wrt_gas=False)` per micro-batch, `engine.step()` once.

Projector-only pitfall: a micro-batch without images would leave the trainable
projector out of the graph (a loss with no grad_fn; DeepSpeed asserts), and under
ZeRO-3 a rank that skips the vision tower would desynchronise the parameter gathers.
So a row without images first runs the vision tower + projector on one blank tile and
adds 0 x its sum to the loss: same modules, same order on every rank, zero gradient.

Checkpoints every `checkpoint_interval` steps carry the reader position and RNG states;
after a restart the loop continues from `latest` and replays exactly the samples after
it. With `checkpoint.exportEveryTokens` / `exportEverySteps` a loadable model folder is
also kept at each interval (`sailvl.train.exports`), independent of those checkpoints.
The stage ends when the budget is met (`schedule.BudgetPlan.done`) with the
consolidated weights in `<output>/final/`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

from sailvl.runtime.device import DeviceSpec, peak_flops, resolve_precision, torch_device
from sailvl.runtime.env import WorkerEnv
from sailvl.train import batches as B
from sailvl.train import exports
from sailvl.train.checkpoint import Checkpointer, capture_rng, restore_rng, save_final
from sailvl.train.config import TrainConfig
from sailvl.train.engine import build_engine, ds_config
from sailvl.train.flops import arch_counts, step_flops
from sailvl.train.preflight import ConfigError
from sailvl.train.progress import Progress, StepRecord
from sailvl.train.schedule import lr_factor, plan_budget, warmup_steps

log = logging.getLogger(__name__)
ESTIMATE_SAMPLES = 16  # samples per rank used to estimate tokens per sample


def _all_reduce(values: list[float], op: str = "sum") -> list[float]:
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.tolist()


def _reader(cfg: TrainConfig, worker: WorkerEnv, encoder: Any) -> Any:
    from sailvl.data.reader import ReaderConfig, Source, StreamingReader

    sources = [Source(d.uri, weight=d.weight, name=d.name) for d in cfg.data]
    rc = ReaderConfig(
        seed=cfg.seed,
        rank=worker.rank,
        world_size=worker.world_size,
        prefetch=int(cfg.extra.get("prefetch", 32)),
        threads=int(cfg.extra.get("reader_threads", 2)),
    )
    return StreamingReader(sources, rc, transform=encoder)


def _image_term(engine: Any, dtype: Any, device: Any) -> Any:
    """0 x (vision tower + projector on a blank tile): keeps them in the graph."""
    import torch

    vc = engine.module.config.vision_config
    size = vc.image_size[0]
    blank = torch.zeros(1, 3, size, size, dtype=dtype, device=device)
    feats = engine.module.model.get_image_features(
        pixel_values=blank,
        vision_feature_layer=engine.module.config.vision_feature_layer,
        vision_feature_select_strategy=engine.module.config.vision_feature_select_strategy,
    )
    return feats.float().sum() * 0.0


def _log_step(name: str, step: int, rank: int, ids: list[str], **fields: float) -> None:
    """Record the step's sample ids, loss, tokens and time in SAILVL_TRAIN_ID_LOG (tests
    compare the ids across a kill and resume; the benchmark reads the times).

    A local folder gets one appended line per step in ``rank-<r>.jsonl``. A storage URI
    (``s3://...``: pods lose their files when they are killed, the object store keeps
    them) gets one object per step, ``<uri>/rank-<r>/<step>-<host>-<pid>.json``: objects
    cannot be appended to, and the pod's host name keeps the keys of two pods (whose
    worker pids are alike in their own pid namespaces) apart."""
    folder = os.environ.get("SAILVL_TRAIN_ID_LOG")
    if not folder:
        return
    host = socket.gethostname()
    row = {"name": name, "step": step, "rank": rank, "pid": os.getpid(), "host": host}
    line = json.dumps({**row, **fields, "ids": ids})
    if "://" in folder:
        from sailvl.storage import open_store

        key = f"rank-{rank}/{step:08d}-{host}-{os.getpid()}.json"
        open_store(folder).write_bytes(key, line.encode())
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"rank-{rank}.jsonl"), "a") as fh:
        fh.write(line + "\n")


def train(cfg: TrainConfig, worker: WorkerEnv, dev: DeviceSpec, reporter: Any) -> str:
    """Run (or resume) the stage; return the URI of `<output>/final/`."""
    import random

    import numpy as np
    import torch

    from sailvl.data.packing import Config as PackConfig
    from sailvl.data.packing import packed_loss
    from sailvl.model.attention import use_packed_attention
    from sailvl.model.freeze import apply_freeze
    from sailvl.model.loader import ModelConfig, load_model
    from sailvl.model.presets import get_preset
    from sailvl.train.encode import Encoder, EncoderConfig

    device = torch_device(dev, worker.local_rank)
    precision = resolve_precision(cfg.precision, dev)
    ckpt = Checkpointer(
        cfg.output, rank=worker.rank, local_rank=worker.local_rank, keep=cfg.checkpoint_keep
    )
    final_uri = f"{cfg.output.rstrip('/')}/final"
    if ckpt.final_done():
        log.info("stage already finished: %s", final_uri)
        if worker.is_main:
            reporter.update({"finalCheckpoint": final_uri}, final=True)
        return final_uri

    random.seed(cfg.seed + worker.rank)
    np.random.seed((cfg.seed + worker.rank) % 2**32)
    torch.manual_seed(cfg.seed)  # same init on every rank
    model, tokenizer = load_model(
        ModelConfig(
            preset=cfg.model_preset,
            init_uri=cfg.init_uri,
            vision_uri=cfg.vision_uri,
            llm_uri=cfg.llm_uri,
            seed=cfg.seed,
        )
    )
    use_packed_attention(model)
    counts = apply_freeze(model, cfg.trainable)
    arch = arch_counts(model)
    model.to(device)
    preset = get_preset(cfg.model_preset)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    encoder = Encoder(
        tokenizer,
        EncoderConfig(
            text_mode=cfg.text_mode,
            tile_size=preset.tile_size,
            tokens_per_tile=preset.tokens_per_tile,
            max_tiles=cfg.max_tiles,
            use_thumbnail=cfg.use_thumbnail,
            dtype=str(dtype).removeprefix("torch."),
        ),
    )
    reader = _reader(cfg, worker, encoder)

    mean_tokens = None
    if cfg.budget_kind == "tokens":
        probe = _reader(cfg, worker, encoder)
        got = B.take(iter(probe), ESTIMATE_SAMPLES)
        total, n = _all_reduce([sum(s["tokens"] for s in got), len(got)])
        mean_tokens = total / n
    plan = plan_budget(cfg.budget_kind, cfg.budget, cfg.global_batch, mean_tokens)
    warm = warmup_steps(plan.total_steps, cfg.warmup_ratio)

    def lr_lambda(i: int) -> float:
        return lr_factor(i, plan.total_steps, warm, cfg.min_lr_ratio)

    config = ds_config(
        zero_stage=cfg.zero_stage,
        precision=precision,
        lr=cfg.lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        grad_clip=cfg.grad_clip,
        world_size=worker.world_size,
        torch_adam=dev.device_type == "cpu",
    )
    engine = build_engine(model, config, lr_lambda, cfg.weight_decay)
    progress = Progress(
        name=cfg.name,
        namespace=cfg.namespace,
        reporter=reporter,
        enabled=worker.is_main,
        total_steps=plan.total_steps,
        devices=worker.world_size,
        peak_flops=peak_flops(dev),
        registry=cfg.extra.get("registry"),
    )

    step = tokens = samples = 0
    unit = ckpt.latest()
    if unit is not None:
        client = ckpt.load(engine, unit)
        try:
            reader.load_state_dict(client["reader"])
        except ValueError as err:
            # The reader's position only means something for the same ranks x workers.
            raise ConfigError(
                f"cannot resume from {unit}: {err}; resume with the same nodes x "
                "devicesPerNode as the run that wrote it, or use a new output"
            ) from None
        restore_rng(client["rng"])
        step, tokens, samples = client["step"], client["tokens"], client["samples"]
        log.info("resumed from %s at step %d", unit, step)
    progress.resumed(step, tokens, samples, int(cfg.extra.get("restart_attempt", 0)))
    if worker.is_main:
        log.info("parameters %s; %d steps planned (%s)", counts, plan.total_steps, plan.kind)

    pack = PackConfig(
        max_tokens=cfg.max_tokens,
        max_tiles=cfg.max_images,
        overflow="truncate",
        loss_weighting=cfg.loss_weighting,
        image_token_id=model.config.image_token_id,
        tokens_per_tile=preset.tokens_per_tile,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    world = worker.world_size
    items = iter(reader)
    engine.train()
    while not plan.done(step, tokens):
        t0 = time.perf_counter()
        got = B.take(items, cfg.per_rank_batch)
        rows = B.pack_step(got, pack) if cfg.packing else B.pad_step(got, pack, cfg.micro_batch)
        (n_rows,) = _all_reduce([len(rows)], op="max")
        rows = B.equalize(rows, int(n_rows))
        local_w = sum(float(r.loss_weight[..., 1:].sum()) for r in rows)
        (global_w,) = _all_reduce([local_w])
        denom = torch.tensor(max(global_w, 1e-12), dtype=torch.float32, device=device)
        loss_sum = 0.0
        for row in rows:
            extra = _image_term(engine, dtype, device) if row.pixel_values is None else 0.0
            out = engine(**B.model_inputs(row, device))
            loss = packed_loss(out.logits, row.labels, row.loss_weight, denom) * world + extra
            engine.backward(loss, scale_wrt_gas=False)
            loss_sum += float(loss.detach()) / world
        lr = engine.get_lr()[0]
        engine.step()
        step += 1
        real = sum(r.num_real_tokens for r in rows)
        seg = [  # attention segments: packed rows by cu_seqlens, padded rows whole
            int(n)
            for r in rows
            for n in (r.cu_seqlens[1:] - r.cu_seqlens[:-1]).tolist() * r.input_ids.shape[0]
        ]
        tiles = sum(int(r.pixel_values.shape[0]) for r in rows if r.pixel_values is not None)
        loss_g, real_g, flops_g = _all_reduce(
            [loss_sum, real, step_flops(arch, cfg.trainable, seg, tiles)]
        )
        tokens_before = tokens
        tokens += int(real_g)
        samples += cfg.global_batch
        seconds = time.perf_counter() - t0
        ids = [i for r in rows for i in r.sample_ids]
        _log_step(cfg.name, step, worker.rank, ids, loss=loss_g, tokens=real_g, seconds=seconds)
        norm = getattr(engine, "get_global_grad_norm", lambda: None)()
        progress.record(
            StepRecord(
                step=step,
                loss=loss_g,
                lr=lr,
                tokens=int(real_g),
                grad_norm=float(norm) if norm is not None else None,
                samples=cfg.global_batch,
                seconds=seconds,
                flops=flops_g,
            ),
            plan.progress(step, tokens, samples),
        )
        if worker.is_main and (step % 10 == 0 or step == 1):
            log.info("step %d loss %.4f lr %.2e tok/s %.0f", step, loss_g, lr, progress.last_tps)
        marks = (
            exports.due(cfg.export_kind, cfg.export_interval, step, tokens_before, tokens)
            if cfg.export_kind
            else []
        )
        for name in marks:
            with encoder.lock:  # the reader's decode threads use the tokenizer too
                kept = exports.write_export(
                    engine, tokenizer, cfg.output, name, step=step, tokens=tokens,
                    samples=samples, zero_stage=cfg.zero_stage, rank=worker.rank,
                )  # fmt: skip
            if worker.is_main:
                log.info("exported step %d (%d tokens) to %s", step, tokens, kept.uri)
        if step % cfg.checkpoint_interval == 0 and not plan.done(step, tokens):
            t1 = time.perf_counter()
            client = {
                "step": step,
                "tokens": tokens,
                "samples": samples,
                "reader": reader.state_dict(),
                "rng": capture_rng(),
            }
            uri = ckpt.save(engine, step, client)
            progress.checkpoint(uri, step, time.perf_counter() - t1)
    # Stop the reader's prefetch, and keep its decode threads off the tokenizer while
    # it is saved: a fast tokenizer used from two threads at once fails (or aborts).
    items.close()  # type: ignore[attr-defined]
    with encoder.lock:
        final = save_final(
            engine, tokenizer, cfg.output, zero_stage=cfg.zero_stage, rank=worker.rank
        )
    progress.finished(final)
    return final
