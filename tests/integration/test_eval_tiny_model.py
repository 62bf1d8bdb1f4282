"""End to end: the tiny SAIL-VL model (random weights, saved as a checkpoint) evaluated
on the synthetic TSVs; results, predictions, Markdown and a scaling report are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_tiny_model_end_to_end(tmp_path: Path) -> None:
    from sailvl.eval.config import BenchmarkConfig, EvalConfig
    from sailvl.eval.model_adapter import load_generator
    from sailvl.eval.report import load_results, scaling_report
    from sailvl.eval.runner import run_eval
    from sailvl.eval.synthetic import write_synthetic
    from sailvl.model.build import build_model
    from sailvl.model.checkpoint import save_checkpoint
    from sailvl.model.tokenizer import build_tiny_tokenizer

    ckpt = f"file://{tmp_path}/ckpt"
    save_checkpoint(build_model("tiny", seed=0), build_tiny_tokenizer(), ckpt)
    uris = write_synthetic(f"file://{tmp_path}/data", n=6)
    generator = load_generator(ckpt, preset="tiny", batch_size=4, max_tiles=2, device="cpu")
    scorers = {"synth-ocr": "anls", "synth-mcq": "mcq", "synth-yesno": "pope"}
    for step, tokens in enumerate([10**8, 10**9]):
        cfg = EvalConfig(
            model=ckpt,
            output=f"file://{tmp_path}/eval-{step}",
            benchmarks=[
                BenchmarkConfig(name=n, data=u, scorer=scorers[n]) for n, u in uris.items()
            ],
            batch_size=4,
            max_new_tokens=4,
            tokens=tokens,
        )
        res = run_eval(cfg, generator)
        for name in uris:
            entry = res["benchmarks"][name]
            assert entry["status"] == "ok" and entry["complete"], (name, entry)
            assert entry["scored_rows"] == 6 and 0.0 <= entry["score"] <= 100.0
        preds = (
            (tmp_path / f"eval-{step}" / "predictions" / "synth-mcq.jsonl").read_text().splitlines()
        )
        assert len(preds) == 6 and all("prediction" in json.loads(p) for p in preds)
        assert (tmp_path / f"eval-{step}" / "results.md").exists()
    results = load_results([str(tmp_path / "eval-0"), str(tmp_path / "eval-1")])
    report = scaling_report(results, tmp_path / "report")
    assert report["series"]["all"]["checkpoints"] == 2
    assert (tmp_path / "report" / "report.md").exists()
