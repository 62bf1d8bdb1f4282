"""TSV reading, synthetic benchmarks and the runner with a scripted generator."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sailvl.eval.config import BenchmarkConfig, EvalConfig
from sailvl.eval.prompts import build_prompt, postprocess
from sailvl.eval.runner import run_eval
from sailvl.eval.synthetic import synthetic_tsv, write_synthetic
from sailvl.eval.tsv import load_benchmark, parse_tsv, write_tsv


def _png() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_parse_tsv_na_cells_and_malformed_rows() -> None:
    data = 'index\tquestion\tA\tB\n1\tq\tNone\tx\n2\tq\n3\t"a\tb"\t\tNA\n'
    rows, errors, total = parse_tsv(data)
    assert total == 3 and errors == {"malformed_row": 1}
    assert rows[0]["A"] is None and rows[0]["B"] == "x"  # "None" is NaN for pandas
    assert rows[1]["question"] == "a\tb" and rows[1]["A"] is None and rows[1]["B"] is None


def test_load_benchmark_resolves_references_and_counts_bad_rows(tmp_path: Path) -> None:
    img = _png()
    rows = [
        {"index": 1, "image": img, "question": "q1", "answer": "a"},
        {"index": 2, "image": "1", "question": "q2", "answer": "b"},  # refers to row 1
        {"index": 3, "image": "99", "question": "q3", "answer": "c"},  # missing row
        {"index": 4, "image": None, "question": "q4", "answer": "d"},  # no image
        {"index": 1, "image": img, "question": "dup", "answer": "e"},  # duplicate index
        {"index": 6, "image": "!" * 80, "question": "q6", "answer": "f"},  # not base64
    ]
    path = tmp_path / "b.tsv"
    path.write_bytes(write_tsv(rows, ["index", "image", "question", "answer"]))
    b = load_benchmark(f"file://{path}")
    assert [r["index"] for r in b.records] == ["1", "2"]
    assert b.records[1]["image"] == img
    assert b.errors == {
        "missing_reference": 1,
        "missing_image": 1,
        "duplicate_index": 1,
        "bad_image": 1,
    }
    assert b.total_rows == 6
    assert len(load_benchmark(str(path), subset=1).records) == 1


def test_synthetic_tsvs_are_vlmevalkit_shaped_and_deterministic() -> None:
    for name in ("synth-ocr", "synth-mcq", "synth-yesno"):
        a, b = synthetic_tsv(name, n=9, seed=3), synthetic_tsv(name, n=9, seed=3)
        assert a == b
        rows, errors, total = parse_tsv(a)
        assert total == 9 and not errors
        refs = [r for r in rows if r["image"] and len(r["image"]) <= 64]
        assert len(refs) == 3  # every third row refers to the previous row's image
        assert all(any(o["index"] == r["image"] for o in rows) for r in refs)
    mcq_rows, _, _ = parse_tsv(synthetic_tsv("synth-mcq", n=6))
    assert all(r["answer"] in "ABCD" and r[r["answer"]] for r in mcq_rows)


@pytest.mark.parametrize(
    ("bench", "scorer", "row", "expected"),
    [
        ("mmbench", "mcq_circular", {"question": "Q?", "hint": "H", "A": "x", "B": "y"},
         "H\nQ?\nA. x\nB. y\nAnswer with the option's letter from the given choices directly."),
        ("mmstar", "mcq", {"question": "图?", "A": "x"}, "图?\nA. x\n请直接回答选项字母。"),
        ("mmmu", "mcq", {"question": "Q?"}, "Q?\nAnswer the question directly."),
        ("docvqa", "anls", {"question": "Q?"}, "Q?\nAnswer the question using a single word or phrase."),
        ("mme", "mme", {"question": "Q?"}, "Q? Answer the question using a single word or phrase."),
        ("hallusionbench", "hallusion", {"question": "Q?"},
         "Q? Please answer yes or no. Answer the question using a single word or phrase."),
        ("pope", "pope", {"question": "Q?"}, "Q?"),
        ("mathvista", "judge_mathvista", {"question": "Q?"}, "Q?"),
    ],
)  # fmt: skip
def test_sailvl_prompts(bench: str, scorer: str, row: dict[str, Any], expected: str) -> None:
    assert build_prompt(bench, scorer, row) == expected


def test_postprocess_strips_one_period_for_chartqa_only() -> None:
    assert postprocess("chartqa", "12..") == "12." and postprocess("docvqa", "12.") == "12."


class Oracle:
    """Answers from a lookup on the prompt; counts calls; can fail on a chosen call."""

    def __init__(self, answers: dict[str, str], fail_on: int | None = None) -> None:
        self.answers, self.fail_on, self.calls, self.rows = answers, fail_on, 0, 0

    def generate(self, batch: Sequence[tuple[list[Any], str]], *, max_new_tokens: int) -> list[str]:
        self.calls += 1
        if self.fail_on == self.calls:
            raise RuntimeError("device lost")
        self.rows += len(batch)
        assert all(len(images) == 1 and images[0].mode == "RGB" for images, _ in batch)
        return [self.answers.get(prompt.split("\n")[0], "Yes") for _, prompt in batch]


def _cfg(tmp_path: Path, uris: dict[str, str], **kw: Any) -> EvalConfig:
    benches = [
        BenchmarkConfig(
            name=n,
            data=u,
            scorer={"synth-ocr": "anls", "synth-mcq": "mcq", "synth-yesno": "pope"}[n],
        )
        for n, u in uris.items()
    ]
    return EvalConfig(
        model="file:///m", output=f"file://{tmp_path}/out", benchmarks=benches, batch_size=4, **kw
    )


def test_run_eval_scores_resumes_and_isolates_bad_benchmarks(tmp_path: Path) -> None:
    uris = write_synthetic(f"file://{tmp_path}/data", n=12)
    uris["synth-mcq"] = f"file://{tmp_path}/data/missing.tsv"  # unreadable benchmark
    (tmp_path / "data" / "empty.tsv").write_text("index\timage\tquestion\tanswer\n")
    cfg = _cfg(tmp_path, uris, tokens=10**9)
    cfg.benchmarks.append(
        BenchmarkConfig(name="empty", data=f"file://{tmp_path}/data/empty.tsv", scorer="anls")
    )
    events: list[dict[str, Any]] = []
    gen = Oracle({}, fail_on=2)
    res = run_eval(cfg, gen, progress=events.append)
    b = res["benchmarks"]
    assert b["synth-mcq"]["status"] == "failed" and "NotFound" in b["synth-mcq"]["error"]
    assert b["empty"]["errors"] == {"empty_benchmark": 1}
    assert b["synth-ocr"]["errors"]["generation_failed"] == 4  # second batch of synth-ocr
    assert b["synth-ocr"]["errors"]["unanswered"] == 4
    assert b["synth-yesno"]["score"] is not None and b["synth-yesno"]["complete"]
    assert events[-1]["final"] and events[-1]["benchmarksDone"] == 4
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk["benchmarks"]["synth-ocr"]["scored_rows"] == 8
    assert "General VQA" in (tmp_path / "out" / "results.md").read_text()
    # Rerun: only the 4 failed synth-ocr rows are generated again.
    gen2 = Oracle({})
    res2 = run_eval(cfg, gen2)
    assert gen2.rows == 4
    assert (
        res2["benchmarks"]["synth-ocr"]["complete"]
        and res2["benchmarks"]["synth-ocr"]["scored_rows"] == 12
    )
    lines = (tmp_path / "out" / "predictions" / "synth-ocr.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [str(i) for i in range(12)]


def test_perfect_answers_score_100_and_categories_aggregate(tmp_path: Path) -> None:
    from sailvl.eval.runner import _open_images

    uris = write_synthetic(f"file://{tmp_path}/data", n=9)
    cfg = _cfg(tmp_path, uris)
    answers: dict[tuple[str, bytes], str] = {}
    for b in cfg.benchmarks:
        for r in load_benchmark(b.data).records:
            key = (build_prompt(b.name, b.scorer, r), _open_images(r["image"])[0].tobytes())
            answers[key] = r["answer"]

    class Perfect:
        def generate(
            self, batch: Sequence[tuple[list[Any], str]], *, max_new_tokens: int
        ) -> list[str]:
            return [answers[(p, imgs[0].tobytes())] for imgs, p in batch]

    res = run_eval(cfg, Perfect())
    for name in uris:
        assert res["benchmarks"][name]["score"] == pytest.approx(100.0), name
    assert res["overall"] == pytest.approx(100.0)
    assert set(res["categories"]) == {"ocr_vqa", "general_vqa", "hallucination"}


def test_prometheus_metrics_exported(tmp_path: Path) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    reg = prometheus_client.CollectorRegistry()
    uris = write_synthetic(f"file://{tmp_path}/data", n=6)
    cfg = _cfg(tmp_path, {"synth-yesno": uris["synth-yesno"]}, job=("ns", "suite"), tokens=123)
    res = run_eval(cfg, Oracle({}), registry=reg)
    labels = {"namespace": "ns", "name": "suite", "benchmark": "synth-yesno"}
    assert reg.get_sample_value("sailvl_eval_samples_total", labels) == 6
    assert reg.get_sample_value("sailvl_eval_score", labels) == pytest.approx(
        res["benchmarks"]["synth-yesno"]["score"]
    )
    assert (
        reg.get_sample_value("sailvl_eval_checkpoint_tokens", {"namespace": "ns", "name": "suite"})
        == 123
    )


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="scorer"):
        BenchmarkConfig(name="x", data="file:///x", scorer="nope")
    with pytest.raises(ValueError, match="shard_index"):
        EvalConfig(model="m", output="o", benchmarks=[], shard_index=2, shard_count=2)
    with pytest.raises(ValueError, match="batch_size"):
        EvalConfig(model="m", output="o", benchmarks=[], batch_size=0)


def test_from_spec_expands_suite_defaults_data_and_shards() -> None:
    from sailvl.api.evalsuite import EvalSuiteSpec
    from sailvl.eval.config import from_spec

    spec = EvalSuiteSpec.model_validate(
        {
            "model": "file:///m",
            "suite": "understanding",
            "dataRoot": "s3://b/bench",
            "output": "s3://b/out",
            "parallelism": 2,
            "judge": {"endpoint": "http://j:8000/v1", "model": "gpt"},
        }
    )
    cfg = from_spec(spec, name="e", namespace="ns", env={"JOB_COMPLETION_INDEX": "1"})
    assert (cfg.shard_index, cfg.shard_count, cfg.job) == (1, 2, ("ns", "e"))
    first = cfg.benchmarks[0]
    assert (first.name, first.data, first.scorer, first.subset) == (
        "detailcaps",
        "s3://b/bench/detailcaps.tsv",
        "caption_judge",
        500,
    )
    assert all(b.subset == 500 for b in cfg.benchmarks)
    assert cfg.judge is not None and cfg.judge.model == "gpt"


def test_two_shards_split_rows_and_the_last_one_scores(tmp_path: Path) -> None:
    uris = write_synthetic(f"file://{tmp_path}/data", n=10)
    only = {"synth-yesno": uris["synth-yesno"]}
    gens = [Oracle({}), Oracle({})]
    first = run_eval(_cfg(tmp_path, only, shard_index=0, shard_count=2), gens[0])
    assert first["benchmarks"]["synth-yesno"]["status"] == "waiting_for_shards"
    last = run_eval(_cfg(tmp_path, only, shard_index=1, shard_count=2), gens[1])
    entry = last["benchmarks"]["synth-yesno"]
    assert [g.rows for g in gens] == [5, 5]
    assert entry["status"] == "ok" and entry["scored_rows"] == 10 and entry["complete"]
