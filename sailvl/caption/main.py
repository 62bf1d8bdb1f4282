"""`sailvl caption --config FILE`: a CaptionJob pod, from the job config to the exit code.

The job config is the CaptionJob resource (`sailvl.api.jobconfig`: apiVersion, kind,
metadata, resolved camelCase spec). `config_from_spec` maps the spec onto
`CaptionConfig`; the pod's index comes from JOB_COMPLETION_INDEX (Indexed Job).

Status. Every pod writes its own counters to `<output>/_progress/pod-<k>.json` and
merge-patches the CaptionJob status with the *sum over all pods' files* (so pods never
overwrite each other's counts with their own partial ones): shardsTotal, shardsDone,
shardsFailed, samples, samplesPerSecond. Under dynamic assignment every pod sees the
whole job, so shardsTotal is the job's shard count and shardsDone the number of index
objects (one listing of `_index/`: each committed shard has exactly one), and the final
samples come from the output manifest. Status stays a handful of numbers whatever the
shard count: nothing per shard or per pod is written to the resource. When the output is complete (the pod that
writes the output manifest), it also reports Table 1 statistics of `statsSample` output
captions as `stats` (`<lang>_<field>`: e.g. `en_avg_length`, `zh_uniq_noun`).

A pod that exits 1 first reports why as `message` (one line naming the failed shard's
URI, or the step that could not start, with the error) and `error` (the error class),
and writes the same line as its termination message (`report_failure`), so the
CaptionJob's Failed condition names the object, not only the pod's log.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from sailvl.caption.config import CaptionConfig

log = logging.getLogger("sailvl.caption")
DEVICES = {"nvidia": "cuda", "ascend": "npu", "cpu": "cpu"}


def config_from_spec(spec: Any, name: str = "", namespace: str = "") -> CaptionConfig:
    """Map a `sailvl.api.caption.CaptionJobSpec` onto the worker's config."""
    e, p, g, f = spec.engine, spec.prompt, spec.generation, spec.filter
    return CaptionConfig.from_dict(
        {
            "input_uri": spec.input,
            "input_format": spec.input_format,
            "output_uri": spec.output,
            "model_uri": spec.model.uri,
            "backend": spec.backend,
            "engine": {
                "tp": e.tp,
                "batch_size": e.batch_size,
                "session_len": e.session_len,
                "cache_max_entry_count": e.cache_max_entry_count,
                "max_dynamic_patch": e.max_dynamic_patch,
                "device": DEVICES[spec.accelerator],
            },
            "prompt": {"lang": p.language, "use_alt_text": p.use_alt_text, "version": p.version},
            "generation": {
                "max_new_tokens": g.max_new_tokens,
                "temperature": g.temperature,
                "top_p": g.top_p,
                "repetition_penalty": g.repetition_penalty,
            },
            "filter": {
                "min_chars": f.min_chars,
                "max_chars": f.max_chars,
                "dedup": "exact" if f.dedup else "none",
            },
            "shard_count": spec.parallelism,
            "assignment": spec.assignment,
            "claim_timeout_s": float(spec.claim_timeout_seconds),
            "max_takeovers": spec.max_takeovers,
            "shard_retries": spec.shard_retries,
            "stats_sample": spec.stats_sample,
            "job_name": name,
            "job_namespace": namespace,
        }
    )


def aggregate(out_store: Any) -> dict[str, Any]:
    """Sum the per-pod progress files into CaptionJob status fields (camelCase)."""
    from sailvl.caption.shards import indexed_outputs

    tot = {"shardsTotal": 0, "shardsDone": 0, "shardsFailed": 0, "samples": 0}
    rate = 0.0
    dynamic = 0
    for key in out_store.list("_progress/"):
        try:
            snap = json.loads(out_store.read_bytes(key))
        except Exception:  # noqa: BLE001 - a torn or foreign file is skipped
            continue
        if snap.get("assignment") == "dynamic":  # every pod counts the whole job
            dynamic = max(dynamic, snap.get("shards_total", 0))
            tot["shardsFailed"] += snap.get("shards_failed", 0)
            tot["samples"] += snap.get("samples", 0)
            rate += snap.get("samples_per_second", 0.0)
            continue
        tot["shardsTotal"] += snap.get("shards_total", 0)
        tot["shardsDone"] += snap.get("shards_done", 0)
        tot["shardsFailed"] += snap.get("shards_failed", 0)
        tot["samples"] += snap.get("samples", 0)
        rate += snap.get("samples_per_second", 0.0)
    if dynamic:
        tot["shardsTotal"] += dynamic
        tot["shardsDone"] += len(indexed_outputs(out_store))
    return {**tot, "samplesPerSecond": round(rate, 3)}


def _captioned(out_store: Any) -> int:
    """Samples captioned over the whole output, from the index objects (read in parallel
    by the manifest writer moments before; small)."""
    from concurrent.futures import ThreadPoolExecutor

    from sailvl.caption.shards import INDEX

    keys = [k for k in out_store.list(INDEX) if k.endswith(".json")]

    def one(key: str) -> int:
        facts = json.loads(out_store.read_bytes(key))
        return int(facts.get("captioned", facts.get("samples", 0)))

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(one, keys))


def run_job(cfg: CaptionConfig, reporter: Any = None, backend: Any = None) -> int:
    """Run the pod and report status; returns the exit code."""
    from sailvl.caption.cli import run_caption
    from sailvl.runtime.report import report_failure
    from sailvl.storage import open_store

    out_store = open_store(cfg.output_uri)

    def report(snap: dict[str, Any]) -> None:
        if reporter is not None:
            reporter.update(aggregate(out_store))

    def failed(message: str, error: str) -> None:
        report_failure(reporter, message, error)

    rc = run_caption(cfg, backend=backend, on_progress=report, on_failure=failed)
    if reporter is None:
        return rc
    try:
        fields = aggregate(out_store)
    except Exception as exc:  # noqa: BLE001 - the store that failed the run: counters stay
        log.warning("caption status not aggregated: %s", exc)
        return rc
    if rc == 0 and cfg.assignment == "dynamic" and out_store.exists("manifest.json"):
        fields["samples"] = _captioned(out_store)
    if rc == 0 and cfg.stats_sample and out_store.exists("manifest.json"):
        try:
            from sailvl.quality.stats import dataset_stats

            rows = dataset_stats(cfg.output_uri, cfg.stats_sample)
            fields["stats"] = {
                f"{lang}_{k}": float(v)
                for lang, s in rows.items()
                for k, v in s.to_dict().items()
                if k != "lang"
            }
        except Exception as exc:  # noqa: BLE001 - statistics are advisory
            log.warning("caption statistics failed: %s", exc)
    reporter.update(fields, final=True)
    return rc


def main(args: Any) -> int:
    """Entry of `sailvl caption` (args.config: the job config path)."""
    from sailvl.api.jobconfig import load_job_config
    from sailvl.runtime.report import StatusReporter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    kind, name, spec = load_job_config(args.config)
    if kind != "CaptionJob":
        raise SystemExit(f"sailvl caption: job config is a {kind}, not a CaptionJob")
    from pathlib import Path

    import yaml

    meta = yaml.safe_load(Path(args.config).read_text()).get("metadata") or {}
    namespace = meta.get("namespace", "default")
    cfg = config_from_spec(spec, name, namespace)
    from sailvl.runtime.metrics import JOB_METRICS_PORT

    cfg.metrics_port = int(os.environ.get("SAILVL_METRICS_PORT", JOB_METRICS_PORT))
    return run_job(cfg, StatusReporter("CaptionJob", name, namespace))
