"""One short stage of a ~100M-parameter SAIL-VL on one GPU: tokens/s and MFU.

Run on a lent GPU: `python tests/gpu/train_gpu.py [--steps 30]`. The model keeps the
real tile arithmetic (448 px tiles, patch 14, 256 tokens per tile) with a small
InternViT (6 x 384) and a 12 x 768 Qwen2 LLM (about 100M parameters, byte-level
vocabulary). Training goes through the stage runner's own pieces: the packed
attention (`sailvl_packed`: flash-attn varlen when flash_attn is installed, else
per-segment SDPA; the backend used is printed), the DeepSpeed engine config of
`sailvl.train.engine` (ZeRO-2, bf16, world size 1) and the FLOPs formula of
`sailvl.train.flops`. Batches are synthetic packed rows (8192 tokens, 8 images of one
tile) with random ids, so no data loading is timed. Target: MFU >= 35% on an H100 in
bf16 (peak 989 TFLOP/s dense).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class _PlainEngine:
    """The three engine calls the loop uses, on a plain module and fused AdamW."""

    def __init__(self, model: object) -> None:
        import torch

        self.module = model
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # type: ignore[attr-defined]

    def __call__(self, **kw: object) -> object:
        return self.module(**kw)  # type: ignore[operator]

    def backward(self, loss: object, scale_wrt_gas: bool = False) -> None:
        loss.backward()  # type: ignore[attr-defined]

    def step(self) -> None:
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--micro", type=int, default=4, help="packed rows per step")
    ap.add_argument("--profile", action="store_true", help="print the top kernels of a step")
    ap.add_argument(
        "--throughput-out",
        default="",
        help="write the measured tokens/s as a `sailvl plan` throughput file (YAML)",
    )
    args = ap.parse_args()
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29533", "RANK": "0",
                       "LOCAL_RANK": "0", "WORLD_SIZE": "1", "DS_ACCELERATOR": "cuda"})  # fmt: skip
    import torch

    from sailvl.data.packing import packed_loss
    from sailvl.model.attention import flash_available, use_packed_attention
    from sailvl.model.build import build_model
    from sailvl.model.presets import ModelPreset, TextPreset, VisionPreset
    from sailvl.runtime.device import device_spec, peak_flops
    from sailvl.train.engine import build_engine, ds_config
    from sailvl.train.flops import arch_counts, mfu, step_flops

    preset = ModelPreset(
        name="gpu-100m",
        vision=VisionPreset(hidden_size=384, num_hidden_layers=6, num_attention_heads=6,
                            intermediate_size=1536),
        text=TextPreset(hidden_size=768, intermediate_size=2304, num_hidden_layers=12,
                        num_attention_heads=12, num_key_value_heads=4, vocab_size=320,
                        tie_word_embeddings=True, max_position_embeddings=16384),
        builds_tokenizer=True,
    )  # fmt: skip
    torch.cuda.set_device(0)
    model = build_model(preset, seed=0)
    use_packed_attention(model)
    n_params = sum(p.numel() for p in model.parameters())
    arch = arch_counts(model)
    cfg = ds_config(zero_stage=2, precision="bf16", lr=1e-4, betas=(0.9, 0.95),
                    weight_decay=0.05, grad_clip=1.0, world_size=1, torch_adam=True)  # fmt: skip
    try:
        import deepspeed  # noqa: F401

        engine = build_engine(model.cuda(), cfg, lambda s: 1.0, 0.05)
        runner = "DeepSpeed ZeRO-2 bf16"
    except ImportError:  # the GPU image may lack DeepSpeed (no wheel on PyPI)
        engine = _PlainEngine(model.cuda().to(torch.bfloat16))
        runner = "plain torch AdamW, bf16 weights (DeepSpeed not installed)"
    img_id, tpt, tile = model.config.image_token_id, preset.tokens_per_tile, preset.tile_size
    g = torch.Generator().manual_seed(0)

    def row() -> tuple[dict, torch.Tensor, torch.Tensor, list[int]]:
        lengths, left = [], args.tokens
        while left > 0:  # samples of 512..2048 tokens, one image each
            n = min(left, int(torch.randint(512, 2049, (1,), generator=g)))
            lengths.append(n)
            left -= n
        ids, pos = [], []
        tiles = 0
        for n in lengths:
            t = torch.randint(0, 256, (n,), generator=g)
            if n > tpt + 8:
                t[4 : 4 + tpt] = img_id
                tiles += 1
            ids.append(t)
            pos.append(torch.arange(n))
        cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
        x = torch.cat(ids)[None].cuda()
        kw = {"input_ids": x, "position_ids": torch.cat(pos)[None].cuda(),
              "cu_seq_lens_q": cu.cuda(), "cu_seq_lens_k": cu.cuda(),
              "max_length_q": max(lengths), "max_length_k": max(lengths), "use_cache": False,
              "pixel_values": torch.randn(tiles, 3, tile, tile, generator=g)
              .to("cuda", torch.bfloat16)}  # fmt: skip
        labels = torch.where(x == img_id, -100, x)
        return kw, labels, (labels != -100).float(), lengths

    batches = [row() for _ in range(args.micro)]
    peak = peak_flops(device_spec("nvidia"))
    times, flops_per_step = [], 0.0
    for step in range(args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        total = sum(float(w.sum()) for _, _, w, _ in batches)
        for kw, labels, w, _ in batches:
            out = engine(**kw)
            engine.backward(packed_loss(out.logits, labels, w, total), scale_wrt_gas=False)
        engine.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        if step == 0:
            segs = [n for *_, lens in batches for n in lens]
            tiles = sum(int(kw["pixel_values"].shape[0]) for kw, *_ in batches)
            flops_per_step = step_flops(arch, ["vision", "projector", "llm"], segs, tiles)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for kw, labels, w, _ in batches:
                out = engine(**kw)
                engine.backward(packed_loss(out.logits, labels, w, 1.0), scale_wrt_gas=False)
            engine.step()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))
    steady = times[5:] or times
    sec = sum(steady) / len(steady)
    tok = args.tokens * args.micro
    print(f"device: {torch.cuda.get_device_name()}; params {n_params / 1e6:.1f}M")
    print(f"runner: {runner}")
    print(f"attention: {'flash-attn varlen' if flash_available() else 'per-segment SDPA'}")
    print(f"step {sec * 1e3:.1f} ms, tokens/s {tok / sec:,.0f}")
    print(
        f"model TFLOP/step {flops_per_step / 1e12:.2f}, achieved {flops_per_step / sec / 1e12:.1f} TFLOP/s"
    )
    print(f"MFU {mfu(flops_per_step, sec, 1, peak):.1%} (peak {peak or 0:.3g} FLOP/s)")
    if args.throughput_out:  # format: sailvl.api.compute (one device, this model)
        import yaml

        figures = {
            "device": torch.cuda.get_device_name(),
            "source": f"tests/gpu/train_gpu.py: {n_params / 1e6:.0f}M-parameter SAIL-VL, "
            f"{args.micro} packed rows of {args.tokens} tokens, {runner}, MFU "
            f"{mfu(flops_per_step, sec, 1, peak):.1%}",
            "default": {"tokensPerSecond": round(tok / sec, 1)},
        }
        Path(args.throughput_out).write_text(yaml.safe_dump(figures, sort_keys=False))
        print(f"throughput file: {args.throughput_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
