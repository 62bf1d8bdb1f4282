"""Packed vs padded training throughput, 2 CPU workers over gloo, the tiny model.

Run: `python tests/bench/bench_train.py [--steps N]`. One launch
(`python -m sailvl.train.sequence`) trains the same stage twice on the same synthetic
data, side by side in the same process group: padded (`packing.enabled: false`,
`microBatch` samples padded to the longest) and packed (the stream accumulator, one
row per micro-batch, per-segment attention). Printed: real (non-pad) tokens per second
of each, their ratio, the padding share, and the MFU each reached.

MFU formula (sailvl/train/flops.py): per module with N matmul parameters over T
tokens, 6NT if it trains, 4NT if frozen but gradients flow through it, 2NT if frozen
before every trainable module; attention adds 4 d c per token and layer forward
(c = keys attended: n(n+1)/2 summed per causal segment), x3 with a backward.
MFU = FLOPs / (seconds x devices x peak FLOP/s); on CPU set SAILVL_PEAK_FLOPS
(FLOP/s per worker) to get a number, e.g. 5e10.

The result (benchmarks/results/train.json) gives each side's real tokens/s per step
(min / median / max over the steps after warm-up) and the ratio of step k packed to
step k padded over the same k (the ratio of the totals is kept beside it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.results import spread, write_result  # noqa: E402
from tests.integration.test_train_stages import free_port, train_env, write_job  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--samples", type=int, default=512)
    args = ap.parse_args()
    from sailvl.data.dataset import WriterConfig
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = f"file://{tmp}/data"
    write_synthetic(
        data, args.samples, SyntheticConfig(seed=1, min_size=48, max_size=160),
        WriterConfig(max_samples_per_shard=128),
    )  # fmt: skip
    common = dict(preset="sft-knowledge", data=data, zero=2, global_batch=16,
                  budget={"steps": args.steps}, lr=1e-3, max_tokens=2048)  # fmt: skip
    jobs = [
        write_job(tmp / "padded.yaml", name="padded", output=f"file://{tmp}/padded",
                  packing={"enabled": False, "maxTokens": 2048}, microBatch=4, **common),
        write_job(tmp / "packed.yaml", name="packed", output=f"file://{tmp}/packed", **common),
    ]  # fmt: skip
    env = {**train_env(tmp, free_port()), "SAILVL_TRAIN_ID_LOG": str(tmp / "steps")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sailvl.train.sequence", *map(str, jobs)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    (tmp / "launch.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        print(f"full log: {tmp / 'launch.log'}", file=sys.stderr)
        return 1
    rows = [json.loads(x) for x in (tmp / "steps" / "rank-0.jsonl").read_text().splitlines()]
    result, per_step = {}, {}
    for name in ("padded", "packed"):
        mine = [r for r in rows if r["name"] == name and r["step"] > 2]  # skip warm-up
        tokens = sum(r["tokens"] for r in mine)
        seconds = sum(r["seconds"] for r in mine)
        result[name] = tokens / seconds
        per_step[name] = {r["step"]: r["tokens"] / r["seconds"] for r in mine}
        print(
            f"{name:7s} steps={len(mine)} real tokens={tokens:.0f} tokens/s={tokens / seconds:.0f}"
        )
    total = result["packed"] / result["padded"]
    print(f"packed/padded real tokens/s ratio: {total:.2f}x")
    print(f"(2 workers, CPU, one launch of {time.perf_counter() - t0:.0f}s; data in {tmp})")
    paired = sorted(set(per_step["packed"]) & set(per_step["padded"]))
    ratio = spread([per_step["packed"][k] / per_step["padded"][k] for k in paired])
    ratio["ratio_of_totals"] = total
    write_result(
        "train",
        title="DeepSpeed ZeRO-2, 2 CPU ranks: packed vs padded",
        inputs={"steps": args.steps, "samples": args.samples, "global_batch": 16,
                "max_tokens": 2048, "micro_batch_padded": 4, "warm_up_steps_skipped": 2},
        figures={k: spread(list(v.values()), "tokens/s") for k, v in per_step.items()},
        ratio={"name": "packed / padded real tokens/s, step k vs step k",
               "target": "> 1x", **ratio},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
