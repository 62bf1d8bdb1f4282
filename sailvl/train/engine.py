"""The DeepSpeed engine of a stage: its config (pure) and its construction.

Gradient accumulation is driven by the loop, not by DeepSpeed's micro-step counter:
the number of packed micro-batches per step varies (samples per step are fixed, their
lengths are not), so the config sets `managed_gradient_accumulation: false`. Then
`engine.backward(loss, scale_wrt_gas=False)` only accumulates, and `engine.step()` is
the boundary that reduces gradients across ranks and updates. `train_batch_size` is
nominal (1 per rank): DeepSpeed requires the triple to be consistent, but nothing reads
it when accumulation is unmanaged.

Only the trainable parameters go to the optimizer, split into a decayed group (matrices)
and an undecayed one (biases, norms). DeepSpeed averages gradients over the data-parallel
ranks, which the loop's loss scaling accounts for. On CPU, `torch_adam: true` avoids
compiling DeepSpeed's fused Adam (DS_BUILD_OPS=0 images have no compiler toolchain
anyway); overlap_comm is off because unmanaged accumulation allows it only on ZeRO-2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def ds_config(
    *,
    zero_stage: int,
    precision: str,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    grad_clip: float,
    world_size: int,
    torch_adam: bool,
) -> dict[str, Any]:
    """The DeepSpeed config dict (pure)."""
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"precision: {precision!r} must be resolved to bf16|fp16|fp32")
    zero: dict[str, Any] = {
        "stage": zero_stage,
        "overlap_comm": False,
        "contiguous_gradients": True,
        "reduce_bucket_size": 50_000_000,
    }
    if zero_stage == 3:
        zero.update({"stage3_param_persistence_threshold": 0, "stage3_prefetch_bucket_size": 0})
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "train_batch_size": world_size,
        "managed_gradient_accumulation": False,
        "gradient_clipping": grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": lr,
                "betas": list(betas),
                "eps": 1e-8,
                "weight_decay": weight_decay,
                "torch_adam": torch_adam,
            },
        },
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters only: matrices decayed, vectors (bias, norm) not."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def build_engine(
    model: Any,
    config: dict[str, Any],
    lr_lambda: Callable[[int], float],
    weight_decay: float,
) -> Any:
    """deepspeed.initialize over the trainable parameters, with a LambdaLR schedule."""
    import deepspeed
    import torch

    if config.get("zero_optimization", {}).get("stage") is not None and _cpu_without_shm():
        # DeepSpeed's CPU backend JIT-compiles a shared-memory all-reduce op (a C++
        # build of minutes on a busy 2-core CI machine, repeated whenever its cache is
        # cold). gloo does the same job; opt back in with SAILVL_DS_SHM=1.
        # importlib, not `import deepspeed.comm.torch as m`: the package has an attribute
        # `torch` (the real torch), which that statement would bind instead.
        import importlib

        importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None

    def scheduler(optimizer: Any) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

    engine, _, _, _ = deepspeed.initialize(
        model=model,
        model_parameters=param_groups(model, weight_decay),
        config=config,
        lr_scheduler=scheduler,
    )
    return engine


def _cpu_without_shm() -> bool:
    import os

    return os.environ.get("DS_ACCELERATOR") == "cpu" and os.environ.get("SAILVL_DS_SHM") != "1"


def gathered(engine: Any, zero_stage: int) -> Any:
    """Context in which every parameter of the module is whole on every rank."""
    import contextlib

    if zero_stage != 3:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None)
