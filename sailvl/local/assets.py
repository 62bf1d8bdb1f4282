"""First-run set-up of a local demo: synthetic data, benchmarks and the initial model.

Everything lands under the run's storage (``${RUN}`` of the demo curriculum), written
once and reused (a ``_READY`` marker is committed last, so an interrupted set-up is
redone rather than half-used):

- ``data/raw``: images with alt-text for the caption step;
- ``data/pretrain``: OCR renders and shape scenes with detailed captions (pretraining);
- ``data/sft``: question / answer turns drawn like the synthetic benchmarks (other
  seeds, the same prompts the evaluator uses), for the SFT stages;
- ``bench/<name>.tsv``: the synthetic benchmarks (VLMEvalKit TSV): ``synth-*``, drawn by
  the same generators as ``data/sft`` (in-distribution), and ``heldout-*``, the same
  questions drawn with other words, font and layouts (``sailvl.eval.synthetic_heldout``),
  which no training row is drawn from; and the understanding suite's English
  transcription sets (``idl-wds``, ``docstruct``, ``synthtext``, ``synthdog-en``;
  ``sailvl.eval.synthetic_understanding``), read by the pretraining stages' evals;
- ``models/tiny-init``: the randomly initialised tiny SAIL-VL model and its tokenizer,
  the curriculum's starting point and the untrained baseline of the report.

The ``groundtruth`` profile writes, instead of the data and benchmarks above, the
candidate collections of known quality of :mod:`sailvl.data.groundtruth` and their
benchmark (``bench/gt-shapes.tsv``), for the demo Experiment.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from sailvl.storage import open_store

MARKER = "_READY"
# The understanding suite's stand-ins the demo writes: the transcription sets that need
# neither a judge (the captions do) nor a CJK font (synthdog-zh does).
UNDERSTANDING = ("idl-wds", "docstruct", "synthtext", "synthdog-en")
SIZES = {
    "synthetic": {"raw": 48, "pretrain": 1200, "sft": 1500, "bench": 60},
    "synthetic-small": {"raw": 8, "pretrain": 96, "sft": 96, "bench": 9},  # tests
}


# Candidate collections of known quality and their benchmark, for Experiments
# (sailvl.data.groundtruth: data/<collection>, bench/gt-shapes.tsv).
GROUNDTRUTH = "groundtruth"


def ensure_assets(root: str, profile: str = "synthetic") -> None:
    if profile not in SIZES and profile != GROUNDTRUTH:
        raise ValueError(
            f"sailvl.io/local-setup: unknown profile {profile!r} "
            f"(known: {sorted([*SIZES, GROUNDTRUTH])})"
        )
    store = open_store(root)
    if store.exists(MARKER):
        return
    if profile == GROUNDTRUTH:
        from sailvl.data.groundtruth import write_groundtruth

        write_groundtruth(root)
        save_initial_model(f"{root.rstrip('/')}/models/tiny-init")
        train_warm_start(root)
        store.write_bytes(MARKER, b"ok\n")
        return
    n = SIZES[profile]
    write_datasets(root.rstrip("/"), n)
    from sailvl.eval.synthetic import write_synthetic as write_benchmarks

    write_benchmarks(f"{root.rstrip('/')}/bench", n=n["bench"], seed=0, heldout=True)
    from sailvl.eval.synthetic_understanding import write_understanding

    bench = f"{root.rstrip('/')}/bench"
    write_understanding(bench, n=max(3, n["bench"] // 10), names=UNDERSTANDING)
    save_initial_model(f"{root.rstrip('/')}/models/tiny-init")
    store.write_bytes(MARKER, b"ok\n")


def write_datasets(root: str, n: dict[str, int]) -> None:
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic

    write_synthetic(f"{root}/data/raw", n["raw"], SyntheticConfig(seed=101, max_size=128))
    write_synthetic(f"{root}/data/pretrain", n["pretrain"], SyntheticConfig(seed=202, max_size=128))
    write_bench_style(f"{root}/data/sft", n["sft"], seed=303)


def write_bench_style(uri: str, n: int, seed: int) -> None:
    """Training rows shaped like the synthetic benchmarks' (disjoint seeds). Only the
    in-distribution generators: the held-out benchmarks must stay unseen."""
    from sailvl.api.benchmarks import BENCHMARKS
    from sailvl.data.dataset import DatasetWriter
    from sailvl.eval.prompts import build_prompt
    from sailvl.eval.synthetic import GENERATORS

    out = DatasetWriter(uri, meta={"generator": "sailvl.local.assets", "seed": seed})
    per = max(1, n // len(GENERATORS))
    for name, (gen, _) in sorted(GENERATORS.items()):
        rows = gen(per, random.Random(f"{seed}:{name}"))
        images: dict[str, str] = {}
        for row in rows:
            cell = str(row["image"])
            image = images[cell] if len(cell) <= 64 else cell
            images[str(row["index"])] = image
            prompt = build_prompt(name, BENCHMARKS[name].scorer, row)
            out.write(
                _row(f"{name}-{seed}-{row['index']}", image, prompt, str(row["answer"]), name)
            )
    out.close()


def _row(id_: str, image_b64: str, prompt: str, answer: str, source: str) -> dict[str, Any]:
    return {
        "id": id_,
        "images": [base64.b64decode(image_b64)],
        "alt_text": "",
        "caption": "",
        "conversations": [
            {"role": "user", "content": f"<image>\n{prompt}"},
            {"role": "assistant", "content": answer},
        ],
        "source": source,
        "lang": "en",
    }


# The ground-truth Experiments' starting checkpoint (see sailvl.data.groundtruth):
# the tiny model trained on the clean warm-up rows, through the local executor; 160
# steps of 8 reach about 81 gt-shapes (not saturated, so SFT subsets move it both ways).
WARM_START = {"steps": 160, "lr": 3e-3, "global_batch": 8}


def train_warm_start(root: str, export_every_tokens: int | None = None) -> str:
    """Train ``<root>/models/warm-start/final`` from ``models/tiny-init`` on
    ``data/warmup`` as a one-stage Curriculum run by the local executor (so exactly as
    any stage: ``sailvl train`` in a subprocess, DeepSpeed, one CPU process); resumes
    or skips like any stage. Return the checkpoint's URI.

    ``export_every_tokens`` also keeps a loadable model every that many tokens
    (``models/warm-start/export/tokens-<mark>/``, :mod:`sailvl.train.exports`): the
    ground-truth checkpointScaling test anneals those instead of training a run of
    its own (the exports do not change the training: same steps, same weights)."""
    import tempfile
    from pathlib import Path

    from sailvl.api.curriculum import CurriculumSpec

    from .executor import LocalExecutor

    root = root.rstrip("/")
    export: dict[str, Any] = {}
    if export_every_tokens is not None:
        export = {"overrides": {"checkpoint": {"exportEveryTokens": export_every_tokens}}}
    spec = CurriculumSpec.model_validate(
        {
            "storage": {"uri": f"{root}/models"},
            "model": {"preset": "tiny", "init": f"{root}/models/tiny-init"},
            "defaults": {
                "accelerator": "cpu", "devicesPerNode": 1, "maxRestarts": 0,
                "deepspeed": {"zeroStage": 2, "precision": "fp32"},
                "packing": {"maxTokens": 2048, "maxImages": 32},
                "checkpoint": {"intervalSteps": 1000, "keep": 1},
            },
            "stages": [
                {
                    "name": "warm-start", "preset": "sft-instruction", "maxTiles": 1,
                    "data": [{"uri": f"{root}/data/warmup"}],
                    "budget": {"steps": WARM_START["steps"]},
                    "globalBatch": WARM_START["global_batch"],
                    "optimizer": {"lr": WARM_START["lr"], "warmupRatio": 0.1},
                    **export,
                }
            ],
        }
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="sailvl-warm-start-") as work:
        # One intra-op thread unless the caller set OMP_NUM_THREADS: the tiny model's
        # ops are too small to gain from more, and the ground-truth figures were
        # calibrated with one (tests/e2e/test_experiment_groundtruth.py pins it too).
        env = {"OMP_NUM_THREADS": "1"}
        rc = LocalExecutor("warm-start", spec, Path(work), env=env).run()
        if rc != 0:
            log = Path(work) / "local" / "warm-start" / "log.txt"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the ground-truth warm start failed:\n{tail}")
    return f"{root}/models/warm-start/final"


def save_initial_model(uri: str, seed: int = 0) -> None:
    from sailvl.model.build import build_model, fit_embeddings
    from sailvl.model.checkpoint import save_checkpoint
    from sailvl.model.tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    model = build_model("tiny", seed=seed)
    fit_embeddings(model, tokenizer)
    save_checkpoint(model, tokenizer, uri)


def main(args: Any) -> int:
    """``sailvl gen-data OUT``: the demo's data, benchmarks and initial model at OUT."""
    ensure_assets(args.out)
    print(f"wrote synthetic data, benchmarks and the initial model under {args.out}")
    return 0
