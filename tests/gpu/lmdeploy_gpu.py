"""LMDeploy for real, where a GPU is lent: what tests/integration/test_lmdeploy_contract.py
cannot run on a CPU machine. Prepared for a device check; not run in CI.

    pip install -r images/lmdeploy-requirements.txt -e .     # the captioner image's pin
    python tests/gpu/lmdeploy_gpu.py --model /path/to/SAIL-VL-or-InternVL-chat-folder \\
        [--samples 64] [--batch-size 16] [--patches 1,6] [--out result.json]

The folder must be a real InternVL-Chat checkpoint (weights and remote code, e.g.
SAIL-VL-2B); nothing is downloaded. For each tile budget in --patches it builds sailvl's
LMDeployBackend (TurboMind on CUDA) exactly as the caption worker does, captions
--samples synthetic images through the pipelined worker, and reports:

- engine start-up seconds, captions/s, and peak device memory (nvidia-smi, since the
  TurboMind allocator is outside torch's);
- the prompt length LMDeploy counted for one request (`Response.input_token_len`): it must
  grow with the tile budget, which proves the per-image `max_dynamic_patch` reaches the
  real engine (a budget LMDeploy ignored would give equal lengths);
- that every sample got a caption and none failed (the worker's counters).

It exits 1 when a check fails, and prints one JSON object (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from typing import Any


def gpu_memory_mib() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.split()[0])


def run_budget(model: str, root: str, patches: int, args: argparse.Namespace) -> dict[str, Any]:
    from PIL import Image

    from sailvl.caption.backends.lmdeploy import LMDeployBackend
    from sailvl.caption.config import CaptionConfig, EngineConfig, GenerationConfig
    from sailvl.caption.worker import CaptionWorker
    from sailvl.storage import open_store

    engine = {"batch_size": args.batch_size, "device": "cuda", "max_dynamic_patch": patches}
    gen = {"max_new_tokens": args.max_new_tokens, "temperature": 0.0}
    t0 = time.perf_counter()
    backend = LMDeployBackend(model, EngineConfig(**engine), GenerationConfig(**gen))
    start_s = time.perf_counter() - t0
    # One wide image: its tile count depends on the budget (3:1 -> min(budget, 3) tiles).
    import io

    buf = io.BytesIO()
    Image.new("RGB", (1344, 448), (90, 140, 200)).save(buf, format="PNG")
    raw = buf.getvalue()
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    responses = backend._pipe(  # the Response objects: input_token_len is not in the protocol
        [backend.prepare("Describe the image.", image, raw)], gen_config=backend._gen_config
    )
    input_tokens = int(responses[0].input_token_len)
    backend.close()

    cfg = CaptionConfig.from_dict(
        {
            "input_uri": f"file://{root}/in",
            "output_uri": f"file://{root}/out-{patches}",
            "model_uri": model,
            "backend": "lmdeploy",
            "engine": engine,
            "generation": gen,
        }
    )
    backend = LMDeployBackend(model, cfg.engine, cfg.generation)
    try:
        w = CaptionWorker(cfg, backend, open_store(cfg.input_uri), open_store(cfg.output_uri))
        t1 = time.perf_counter()
        snap = w.run()
        seconds = time.perf_counter() - t1
    finally:
        backend.close()
    return {
        "max_dynamic_patch": patches,
        "engine_start_s": round(start_s, 1),
        "input_token_len_3to1_image": input_tokens,
        "processed": snap["processed"],
        "captions": snap["samples"],
        "captions_per_s": round(snap["processed"] / seconds, 2),
        "peak_gpu_mib": gpu_memory_mib(),
        "failures": snap["failures"],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a local InternVL-Chat folder with weights")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--patches", default="1,6", help="tile budgets to compare")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import lmdeploy
    import torch

    from sailvl.data.dataset import WriterConfig
    from sailvl.data.synthetic import write_synthetic

    if not torch.cuda.is_available():
        print("no CUDA device: LMDeploy's TurboMind needs one", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="lmdeploy-gpu-")
    write_synthetic(
        f"file://{root}/in", args.samples, writer=WriterConfig(max_samples_per_shard=16)
    )
    runs = [run_budget(args.model, root, int(p), args) for p in args.patches.split(",")]
    lengths = [r["input_token_len_3to1_image"] for r in runs]
    checks = {
        "tile budget changes the prompt length": len(set(lengths)) == len(lengths),
        "every sample captioned": all(r["captions"] == args.samples for r in runs),
        "no failed caption": all(not r["failures"] for r in runs),
    }
    result = {
        "lmdeploy": lmdeploy.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "runs": runs,
        "checks": checks,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
