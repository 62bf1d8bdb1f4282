"""``sailvl eval --config FILE``: evaluate a checkpoint for an EvalSuite.

Reads the job config (an EvalSuite's resolved spec), builds :class:`EvalConfig`, loads
the model, serves Prometheus metrics on the job port, reports progress to the
EvalSuite's status through ``sailvl.runtime.report.StatusReporter`` (sink from
``SAILVL_STATUS_SINK``) and writes results under the spec's output URI. Exit code 0
when results.json was written, even if some benchmarks failed (they are reported in
it); 1 only when the run itself could not start (the model cannot be loaded, the output
cannot be written): then it first reports why, naming the model or output URI and the
error class, as `message` / `error` in the status and as the termination message
(`sailvl.runtime.report.report_failure`), so the Failed EvalSuite says it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .config import from_spec

log = logging.getLogger(__name__)


def main(args: Any) -> int:
    from pathlib import Path

    import yaml

    from sailvl.api.jobconfig import load_job_config
    from sailvl.runtime.report import StatusReporter, describe, report_failure

    from .model_adapter import load_generator
    from .runner import run_eval

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    kind, name, spec = load_job_config(args.config)
    if kind != "EvalSuite":
        log.error("eval: the job config is a %s, not an EvalSuite", kind)
        return 1
    meta = yaml.safe_load(Path(args.config).read_text()).get("metadata") or {}
    namespace = str(meta.get("namespace") or os.environ.get("SAILVL_NAMESPACE", "default"))
    cfg = from_spec(spec, name=name, namespace=namespace)  # type: ignore[arg-type]
    from sailvl.runtime.metrics import JOB_METRICS_PORT

    port = int(os.environ.get("SAILVL_METRICS_PORT", JOB_METRICS_PORT))
    if port > 0:
        try:
            from sailvl.runtime.metrics import serve

            serve(port)
        except (ImportError, OSError) as err:
            log.warning("metrics server not started: %s", err)
    reporter = StatusReporter("EvalSuite", name, namespace)

    def progress(snapshot: dict[str, Any]) -> None:
        final = bool(snapshot.pop("final", False))
        fields = {k: snapshot[k] for k in ("scores", "categories", "overall", "errors")}
        fields["benchmarksDone"] = snapshot["benchmarksDone"]
        fields["benchmarksTotal"] = snapshot["benchmarksTotal"]
        reporter.update(fields, final=final)

    what = f"loading model {cfg.model}"
    try:
        generator = load_generator(cfg.model, preset=cfg.model_preset, batch_size=cfg.batch_size)
        what = f"evaluating {cfg.model} into {cfg.output}"
        results = run_eval(cfg, generator, progress=progress)
    except Exception as exc:  # noqa: BLE001 - reported, then the pod exits 1
        log.exception("eval failed")
        report_failure(reporter, *describe(what, exc))
        return 1
    log.info("eval done: overall %s, categories %s", results["overall"], results["categories"])
    return 0
