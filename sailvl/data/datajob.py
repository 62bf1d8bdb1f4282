"""`sailvl data job --config FILE`: run a DataJob's task, as its pods (and `sailvl run`) do.

The job config is the DataJob resource as the operator's ConfigMap holds it
(`sailvl.api.jobconfig`). `command_line` turns its spec into the argument list of the
matching local command (`sailvl data import | score | filter`), adding this pod's
`--shard-index` (the Indexed Job's completion index, `SAILVL_SHARD_INDEX`, else
`JOB_COMPLETION_INDEX`) and `--shard-count` (`SAILVL_SHARD_COUNT`, else the spec's
`parallelism`), and the command's own parser reads it: the pods and a user at a
terminal run exactly the same code with the same defaults. Filter is one process
(no shard options).

`sailvl run datajob.yaml` (a file of DataJob resources, `run_file`) runs each DataJob in
file order and its indexes one after the other on this machine: the last index
finalises the output, as on a cluster.

Exit codes are the command's: 0 done, 1 retry (a pod's index is retried by
`backoffLimitPerIndex`), 2 invalid (the Job fails at once).

Failures are reported, not only logged. The data commands write each error as one
stderr line prefixed `invalid:`, `rejected:` or `failed:` (their contract with a user at
a terminal: the file or object, then what went wrong); a pod keeps those lines while
its command runs (`ErrorLines`, a pass-through on `sys.stderr`) and, when the command
exits non-zero or raises, reports the first as `message` with its kind as `error`
(`sailvl.runtime.report.report_failure`). On a cluster that is the container's
termination message, which the operator names in the DataJob's Failed condition and
`status.message`; a DataJob's pods hold no right on their resource (least privilege),
so the status sink is used only when it is a `file:` (local runs, tests).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sailvl.api import SpecError
from sailvl.api.datajob import DataJobSpec
from sailvl.runtime.report import StatusReporter

KIND = "DataJob"
MODULES = {
    "import": "sailvl.data.importers.main",
    "score": "sailvl.data.score",
    "filter": "sailvl.data.filter",
}
EXIT_FAILED, EXIT_INVALID = 1, 2
#: The data commands' error-line prefixes (module docstring) and the `error` each reports.
ERROR_KINDS = {"invalid": "InvalidInput", "rejected": "ImportRejected", "failed": "TaskFailed"}


def _flag(out: list[str], name: str, value: Any) -> None:
    if value is None or value is False:
        return
    out += [name] if value is True else [name, str(value)]


def command_line(spec: DataJobSpec, index: int, count: int) -> list[str]:
    """The local command's arguments (after `sailvl data <task>`) for one shard."""
    argv = [spec.input, spec.output]
    if spec.task == "import":
        s = spec.import_ or _import_defaults()
        _flag(argv, "--format", s.format)
        _flag(argv, "--image-root", s.image_root)
        _flag(argv, "--max-reject-ratio", s.max_reject_ratio)
        _flag(argv, "--rows-per-shard", s.rows_per_shard)
        _flag(argv, "--threads", s.threads)
        _flag(argv, "--caption-from-alt-text", s.caption_from_alt_text)
    elif spec.task == "score":
        assert spec.score is not None  # the spec's validator requires it
        sc, judge = spec.score, spec.score.judge
        _flag(argv, "--judge-url", judge.endpoint)
        _flag(argv, "--model", judge.model)
        _flag(argv, "--timeout", judge.timeout_seconds)
        _flag(argv, "--concurrency", sc.concurrency)
        _flag(argv, "--retries", sc.retries)
        _flag(argv, "--max-tokens", sc.max_tokens)
        _flag(argv, "--max-failed-ratio", sc.max_failed_ratio)
    else:
        assert spec.filter is not None  # the spec's validator requires it
        f = spec.filter
        for flag, bounds in (("--min", f.min), ("--max", f.max)):
            for crit, value in bounds.as_dict().items():
                argv += [flag, f"{crit}={value:g}"]
        _flag(argv, "--balance", f.balance)
        _flag(argv, "--per-level", f.per_level)
        _flag(argv, "--seed", f.seed)
        _flag(argv, "--keep-unscored", f.keep_unscored)
        return argv
    return [*argv, "--shard-index", str(index), "--shard-count", str(count)]


def _import_defaults() -> Any:
    from sailvl.api.datajob import ImportSettings

    return ImportSettings()


class JobMetrics:
    """`sailvl_data_samples_total{task,status}` and `sailvl_data_shards_total{task}` of
    one DataJob (labels `namespace`, `name` of the resource, not the pod). The score and
    filter commands call it with each committed shard's statuses (`args.report`); an
    import is counted from its manifest by the pod that finalises it."""

    _shared: Any = None  # one Metrics per process: the default registry refuses a second

    def __init__(self, task: str, namespace: str, name: str) -> None:
        from sailvl.runtime.metrics import Metrics, family

        if JobMetrics._shared is None:
            JobMetrics._shared = Metrics(family("sailvl_data_"))
        self.task, self.job = task, {"namespace": namespace, "name": name}
        self.metrics = JobMetrics._shared

    def __call__(self, statuses: Mapping[str, int], shards: int = 1) -> None:
        m, job = self.metrics, self.job
        for status, n in statuses.items():
            if n:
                m.labels("sailvl_data_samples_total", **job, task=self.task, status=status).inc(n)
        if shards:
            m.labels("sailvl_data_shards_total", **job, task=self.task).inc(shards)


class ErrorLines(io.TextIOBase):
    """A pass-through for `sys.stderr` that keeps the complete lines starting with one
    of `ERROR_KINDS`' prefixes (the first `keep` of them); progress redraws (`\r`) and
    other lines only pass."""

    def __init__(self, out: io.TextIOBase | Any, keep: int = 8) -> None:
        self.out, self.keep = out, keep
        self.lines: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        self.out.write(text)
        *done, self._partial = (self._partial + text).split("\n")
        self._partial = self._partial.rsplit("\r", 1)[-1][-4096:]
        for line in done:
            head = line.rsplit("\r", 1)[-1]
            if head.split(":", 1)[0] in ERROR_KINDS and len(self.lines) < self.keep:
                self.lines.append(head)
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return bool(self.out.isatty())

    def fileno(self) -> int:
        return int(self.out.fileno())


def failure(task: str, lines: list[str], rc: int) -> tuple[str, str]:
    """(message, error) of a data command that exited `rc` after writing the error
    `lines` (see `ErrorLines`)."""
    if not lines:
        return f"data {task}: exited with code {rc} without an error line", "ExitCode"
    kind, _, text = lines[0].partition(":")
    more = f" (and {len(lines) - 1} more errors)" if len(lines) > 1 else ""
    return f"data {task}: {text.strip()}{more}", ERROR_KINDS[kind]


def run_spec(
    spec: DataJobSpec,
    index: int,
    count: int,
    report: JobMetrics | None = None,
    status: StatusReporter | None = None,
) -> int:
    """Run the task of `spec` as shard `index` of `count` through the local command;
    with `status`, a failure is reported (module docstring) before the exit code."""
    from sailvl.runtime.report import describe, report_failure

    module = importlib.import_module(MODULES[spec.task])
    parser = argparse.ArgumentParser(prog=f"sailvl data {spec.task}")
    module.add_arguments(parser)
    argv = command_line(spec, index, count)
    print(f"sailvl data {spec.task} {' '.join(argv)}", file=sys.stderr)
    args = parser.parse_args(argv)
    args.data_command = spec.task
    args.report = report
    errors = ErrorLines(sys.stderr)
    try:
        with contextlib.redirect_stderr(errors):
            rc = int(module.main(args) or 0)
    except Exception as exc:
        if status is None:
            raise
        what = f"data {spec.task} {spec.input} -> {spec.output} (shard {index} of {count})"
        report_failure(status, *describe(what, exc))
        return EXIT_FAILED
    if rc != 0 and status is not None:
        report_failure(status, *failure(spec.task, errors.lines, rc))
    if report is not None and spec.task == "import" and rc == 0:
        _report_import(spec, index, report)
    return rc


def _report_import(spec: DataJobSpec, index: int, report: JobMetrics) -> None:
    """An import's per-reason counts, once, by the pod whose run wrote the manifest."""
    from sailvl.data.dataset import Dataset
    from sailvl.data.manifest import ManifestError

    try:
        info = Dataset.open(spec.output).manifest.meta["import"]
    except (ManifestError, KeyError):
        return  # another index finalises
    statuses = {"ok": info["rows_out"], **info["rejected"]}
    report(statuses, shards=len(info.get("sources") or {}))


def _serve_metrics() -> None:
    from sailvl.runtime.metrics import JOB_METRICS_PORT, serve

    port = int(os.environ.get("SAILVL_METRICS_PORT", JOB_METRICS_PORT))
    if port > 0:
        try:
            serve(port)
        except (ImportError, OSError) as err:
            print(f"metrics server not started: {err}", file=sys.stderr)


def _env_int(*names: str) -> int | None:
    for name in names:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return None


def _load(path: Path) -> tuple[str, str, DataJobSpec]:
    """(name, namespace, spec) of a DataJob job config."""
    import yaml

    from sailvl.api.jobconfig import load_job_config

    kind, name, spec = load_job_config(path)
    if kind != KIND or not isinstance(spec, DataJobSpec):
        raise SpecError([f"kind: {path} holds a {kind}, not a {KIND}"])
    meta = yaml.safe_load(Path(path).read_text()).get("metadata") or {}
    return name, str(meta.get("namespace") or "default"), spec


def main(args: Any) -> int:
    """`sailvl data job --config FILE` (one pod of the Indexed Job)."""
    from sailvl.runtime.report import report_failure

    try:
        name, namespace, spec = _load(args.config)
    except SpecError as err:
        for problem in err.problems:
            print(f"invalid: {problem}", file=sys.stderr)
        report_failure(None, "; ".join(err.problems), "InvalidSpec")  # the termination message
        return EXIT_INVALID
    index = _env_int("SAILVL_SHARD_INDEX", "JOB_COMPLETION_INDEX") or 0
    count = _env_int("SAILVL_SHARD_COUNT") or spec.parallelism
    _serve_metrics()
    # No right to patch a DataJob (least privilege): a `kubernetes` sink gets nothing,
    # the termination message carries the failure (module docstring).
    sink = os.environ.get("SAILVL_STATUS_SINK", "none")
    status = StatusReporter(
        KIND, name, namespace, sink=sink if sink.startswith("file:") else "none"
    )
    return run_spec(spec, index, count, JobMetrics(spec.task, namespace, name), status)


def _docs(path: Path) -> list[Any]:
    import yaml

    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]


def run_file(path: Path) -> int:
    """`sailvl run FILE` for a file of DataJob resources: each in file order (an import,
    then its scoring, then the filter), every index in turn on this machine; stops at the
    first that fails."""
    import yaml

    from sailvl.api import parse_resource

    try:
        jobs = [parse_resource(doc) for doc in _docs(path)]
    except (OSError, yaml.YAMLError) as err:
        print(f"{path}: cannot read: {err}", file=sys.stderr)
        return EXIT_INVALID
    except SpecError as err:
        for problem in err.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    for kind, name, spec in jobs:
        assert isinstance(spec, DataJobSpec)
        worst = 0
        for index in range(spec.parallelism):
            rc = run_spec(spec, index, spec.parallelism)
            if rc == EXIT_INVALID:
                return rc
            worst = max(worst, rc)
        if worst:
            print(f"{kind}/{name}: failed (rerun the same command to resume)", file=sys.stderr)
            return worst
        print(f"{kind}/{name}: done", file=sys.stderr)
    return 0


def is_datajob(path: Path) -> bool:
    """True if the YAML file at `path` holds DataJob resources only."""
    import yaml

    try:
        docs = _docs(path)
    except (OSError, yaml.YAMLError):
        return False
    return bool(docs) and all(isinstance(d, dict) and d.get("kind") == KIND for d in docs)


def add_arguments(p: Any) -> None:
    """The `data job` options (called by `sailvl.cli`)."""
    p.add_argument("--config", required=True, type=Path, help="the DataJob's job config")
