"""Run an evaluation: generate answers, resume, score, write results.json.

Per benchmark, inside its own error boundary (a failure is recorded in that
benchmark's entry and the run goes on, so one bad benchmark never loses the others):

1. read the TSV (:mod:`sailvl.eval.tsv`); dropped rows are counted by reason;
2. take this shard's rows (round-robin by position: ``rows[shard_index::shard_count]``);
3. skip rows already in the shard's prediction log (resume), answer the rest in batches
   of ``batch_size`` with greedy decoding through the :class:`Generator`, writing one
   log part per ``flush_every`` batches; a row whose image cannot be decoded is counted
   (``bad_image``) and left unanswered; a batch the generator fails on is counted
   (``generation_failed``) and retried on the next run;
4. when every shard has finished, merge the predictions and score them with the
   benchmark's scorer (rows without a prediction are counted ``unanswered``).

With several shards every pod scores whatever benchmarks are complete; the writes are
idempotent, so the last pod to finish leaves the complete ``results.json``.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from .config import BenchmarkConfig, EvalConfig
from .predictions import (
    PredictionLog,
    all_shards_done,
    collect,
    read_json,
    write_json,
    write_merged,
)
from .progress import EvalProgress, ProgressCallback
from .prompts import build_prompt, postprocess
from .results import build_results, category_of, markdown_table, normalised
from .scorers import JUDGED, score_benchmark
from .scorers.base import JudgeLike
from .tsv import BadRow, decode_images, load_benchmark

log = logging.getLogger(__name__)


class Generator(Protocol):
    """The model surface the runner needs: greedy answers for a batch of prompts.

    ``batch`` holds (images, prompt) pairs; images are PIL images in row order (empty
    for text-only rows). Returns one answer string per pair, in order.
    """

    def generate(
        self, batch: Sequence[tuple[list[Any], str]], *, max_new_tokens: int
    ) -> list[str]: ...


def _open_images(cell: str | None) -> list[Any]:
    if cell is None:
        return []
    from PIL import Image, UnidentifiedImageError

    out = []
    for data in decode_images(cell):
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise BadRow("bad_image", f"not an image: {err}") from None
        out.append(img.convert("RGB"))
    return out


def _generate(
    cfg: EvalConfig,
    bench: BenchmarkConfig,
    rows: list[dict[str, Any]],
    plog: PredictionLog,
    generator: Generator,
    errors: dict[str, int],
    progress: EvalProgress,
) -> bool:
    """Answer the rows not yet in ``plog``; True when every row got an answer."""
    pending = [r for r in rows if str(r["index"]) not in plog.rows]
    buffer: list[dict[str, Any]] = []
    complete = True
    for start in range(0, len(pending), cfg.batch_size):
        batch, inputs = [], []
        for r in pending[start : start + cfg.batch_size]:
            try:
                images = _open_images(r.get("image"))
            except BadRow as err:
                errors[err.kind] = errors.get(err.kind, 0) + 1
                continue
            batch.append(r)
            inputs.append((images, build_prompt(bench.name, bench.scorer, r)))
        if not batch:
            continue
        try:
            answers = generator.generate(inputs, max_new_tokens=cfg.budget(bench))
            if len(answers) != len(batch):
                raise ValueError(f"generator returned {len(answers)} answers for {len(batch)}")
        except Exception as err:  # noqa: BLE001 - the boundary: count, keep going
            log.warning("%s: generation failed for %d rows: %s", bench.name, len(batch), err)
            errors["generation_failed"] = errors.get("generation_failed", 0) + len(batch)
            complete = False
            continue
        for r, (_, prompt), answer in zip(batch, inputs, answers, strict=True):
            buffer.append(
                {
                    "index": r["index"],
                    "prompt": prompt,
                    "prediction": postprocess(bench.name, answer),
                }
            )
        if (start // cfg.batch_size + 1) % cfg.flush_every == 0:
            plog.append(buffer)
            buffer = []
        progress.samples(bench.name, len(batch), len(plog.rows) + len(buffer), len(rows))
    plog.append(buffer)
    return complete  # undecodable images never improve on a rerun: they do not block DONE


def evaluate_benchmark(
    cfg: EvalConfig,
    bench: BenchmarkConfig,
    store: Any,
    generator: Generator,
    judge: JudgeLike | None,
    progress: EvalProgress,
) -> dict[str, Any]:
    """One benchmark's entry for results.json (never raises for bad input)."""
    entry: dict[str, Any] = {
        "scorer": bench.scorer,
        "category": category_of(bench.name),
        "data": bench.data,
        "subset": bench.subset,
        "subset_seed": bench.subset_seed if bench.subset is not None else None,
        "score": None,
        "normalized": None,
        "status": "ok",
    }
    errors: dict[str, int] = {}
    entry["errors"] = errors
    try:
        data = load_benchmark(bench.data, subset=bench.subset, seed=bench.subset_seed)
        errors.update(data.errors)
        entry["total_rows"] = data.total_rows
        if not data.records:
            errors["empty_benchmark"] = 1
            entry["status"] = "empty"
            return entry
        mine = data.records[cfg.shard_index :: cfg.shard_count]
        plog = PredictionLog(store, bench.name, cfg.shard_index, cfg.shard_count)
        if not plog.is_done() and _generate(cfg, bench, mine, plog, generator, errors, progress):
            plog.mark_done()
        if cfg.shard_count > 1 and not all_shards_done(store, bench.name, cfg.shard_count):
            entry["status"] = "waiting_for_shards"
            return entry
        preds = collect(store, bench.name, cfg.shard_count)
        ordered = [preds[str(r["index"])] for r in data.records if str(r["index"]) in preds]
        write_merged(store, bench.name, ordered)
        records = [
            {
                **{k: v for k, v in r.items() if k != "image"},
                "prediction": preds[str(r["index"])]["prediction"],
            }
            for r in data.records
            if str(r["index"]) in preds
        ]
        if len(records) < len(data.records):
            errors["unanswered"] = len(data.records) - len(records)
        if bench.scorer in JUDGED and judge is None:
            errors["judge_missing"] = len(records)
        scored = score_benchmark(bench.name, bench.scorer, records, judge)
        for k, v in scored.errors.items():
            errors[k] = errors.get(k, 0) + v
        entry.update(score=scored.score, metrics=scored.metrics, scored_rows=len(records))
        entry["normalized"] = normalised(bench.scorer, scored.score)
        entry["complete"] = "unanswered" not in errors
        write_json(store, f"scores/{bench.name}.json", {**entry, "samples": scored.samples})
    except Exception as err:  # noqa: BLE001 - one benchmark failing never loses the others
        log.exception("%s: evaluation failed", bench.name)
        entry["status"] = "failed"
        entry["error"] = f"{type(err).__name__}: {err}"
        errors["benchmark_failed"] = 1
    return entry


def run_eval(
    cfg: EvalConfig,
    generator: Generator,
    *,
    judge: JudgeLike | None = None,
    progress: ProgressCallback | None = None,
    registry: Any = None,
) -> dict[str, Any]:
    """Evaluate every benchmark of ``cfg``; write and return results.json's content.

    ``judge`` overrides the one ``cfg.judge`` describes (tests pass fakes). A configured
    judge that fails its probe is dropped (``judge_unreachable`` in the results): the
    scorers then fall back to exact matching, as VLMEvalKit does.
    """
    from sailvl.storage import open_store

    store = open_store(cfg.output)
    run_errors: dict[str, Any] = {}
    if judge is None and cfg.judge is not None:
        from .judge import Judge

        client = Judge(cfg.judge)
        if client.working():
            judge = client
        else:
            run_errors["judge_unreachable"] = client.last_error or "probe failed"
    prog = EvalProgress(
        len(cfg.benchmarks), job=cfg.job, callback=progress, registry=registry, tokens=cfg.tokens
    )
    entries: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    for bench in cfg.benchmarks:
        entry = evaluate_benchmark(cfg, bench, store, generator, judge, prog)
        if "judge_unreachable" in run_errors and bench.scorer in JUDGED:
            entry["errors"]["judge_unreachable"] = 1
        entries[bench.name] = entry
        prog.scored(bench.name, entry["score"], sum(entry["errors"].values()))
    # Shards that finished after this pod looked are done by now if this pod is the last
    # to get here: score what was waiting, so the last results.json written is complete.
    for bench in cfg.benchmarks:
        if entries[bench.name]["status"] == "waiting_for_shards" and all_shards_done(
            store, bench.name, cfg.shard_count
        ):
            entries[bench.name] = evaluate_benchmark(cfg, bench, store, generator, judge, prog)
    meta = {
        "model": cfg.model,
        "suite": cfg.suite,
        "tokens": cfg.tokens,
        "shard": [cfg.shard_index, cfg.shard_count],
        "seconds": round(time.monotonic() - t0, 3),
        "run_errors": run_errors,
        **({"labels": cfg.extra} if cfg.extra else {}),
    }
    results = build_results(entries, meta=meta)
    write_json(store, "results.json", results)
    store.write_bytes("results.md", markdown_table(results).encode())
    prog.finished(results["categories"], results["overall"])
    return results


__all__ = ["Generator", "evaluate_benchmark", "read_json", "run_eval"]
