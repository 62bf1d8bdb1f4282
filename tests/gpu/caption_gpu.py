"""Caption throughput on a lent GPU: images/s of the transformers backend, and of
LMDeploy where it is installed. Prepared for a device check, not run in CI.

    python tests/gpu/caption_gpu.py [--samples 256] [--batch-size 32] [--model URI]

Without --model it builds the tiny preset (random weights), which measures the
pipeline's overhead rather than a realistic model; pass a SAIL-VL / InternVL HF folder
for real numbers (LMDeploy needs a real checkpoint it recognises). Prints one line per
backend with images/s and the device name; a backend that cannot run prints why.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--model", default="")
    args = ap.parse_args()

    import torch

    from sailvl.caption.config import CaptionConfig
    from sailvl.caption.worker import CaptionWorker
    from sailvl.data.dataset import WriterConfig
    from sailvl.data.synthetic import write_synthetic
    from sailvl.storage import open_store

    root = tempfile.mkdtemp(prefix="caption-gpu-")
    model = args.model
    if not model:
        from sailvl.model.build import build_model
        from sailvl.model.checkpoint import save_checkpoint
        from sailvl.model.tokenizer import build_tiny_tokenizer

        model = f"file://{root}/model"
        save_checkpoint(build_model("tiny"), build_tiny_tokenizer(), model)
    write_synthetic(
        f"file://{root}/in",
        args.samples,
        writer=WriterConfig(max_samples_per_shard=max(args.batch_size * 2, 8)),
    )
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    for backend in ("transformers", "lmdeploy"):
        cfg = CaptionConfig.from_dict(
            {
                "input_uri": f"file://{root}/in",
                "output_uri": f"file://{root}/out-{backend}",
                "model_uri": model,
                "backend": backend,
                "engine": {"batch_size": args.batch_size, "device": "auto"},
                "generation": {"max_new_tokens": args.max_new_tokens, "temperature": 1.0},
            }
        )
        try:
            from sailvl.caption.backends import make_backend

            engine = make_backend(cfg)
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"{backend:>12}: not run ({type(exc).__name__}: {exc})")
            continue
        try:
            w = CaptionWorker(cfg, engine, open_store(cfg.input_uri), open_store(cfg.output_uri))
            t0 = time.perf_counter()
            snap = w.run()
            dt = time.perf_counter() - t0
        finally:
            engine.close()
        print(
            f"{backend:>12}: {snap['processed'] / dt:.1f} images/s "
            f"({snap['processed']} in {dt:.1f}s, kept {snap['samples']}, "
            f"failures {snap['failures']}) on {device}"
        )


if __name__ == "__main__":
    main()
