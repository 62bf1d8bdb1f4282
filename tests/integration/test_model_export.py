"""Stage 1 from an original-layout InternViT + a Qwen2 folder, then a ZeRO-3 step
checkpoint exported and evaluated. One launch, 2 CPU workers over gloo.

1. The test writes an InternViT folder in the original layout (fused qkv, ls1 / ls2,
   model_type intern_vit_6b; the tiny preset's sizes) and a tiny Qwen2 folder with its
   tokenizer, and converts the InternViT with `sailvl convert`.
2. A pretrain-alignment stage (projector only) under ZeRO-3 starts from the two folders,
   checkpoints every step and runs 2 steps (then the same under ZeRO-2). The vision tower of its final/ must be the
   InternViT's own tensors, bit for bit (frozen; a silent random init would differ).
3. `sailvl export <output>/step-1 --job-config` writes a standalone folder (weights,
   tokenizer, processor config) whose projector differs from both the random init and
   the final one (it is step 1's); `sailvl eval --config` (an EvalSuite job config) loads
   it and scores a benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_train_stages import free_port, train_env, write_job
from tests.unit.test_model_convert import internvit_config, internvit_state, write_internvit

pytestmark = pytest.mark.timeout(900)
torch = pytest.importorskip("torch")


def test_stage1_from_original_internvit_then_export_zero3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sailvl.cli import main as cli
    from sailvl.data.dataset import WriterConfig
    from sailvl.data.synthetic import SyntheticConfig, write_synthetic
    from sailvl.model.build import build_model
    from sailvl.model.checkpoint import save_parts
    from sailvl.model.loader import load_pretrained
    from sailvl.model.tokenizer import build_tiny_tokenizer

    orig = write_internvit(tmp_path / "internvit-orig", seed=7)
    assert cli(["convert", str(orig), str(tmp_path / "internvit")]) == 0
    save_parts(build_model("tiny", seed=3), build_tiny_tokenizer(),
               str(tmp_path / "unused-vision"), str(tmp_path / "qwen2"))  # fmt: skip
    data = f"file://{tmp_path}/data"
    write_synthetic(data, 32, SyntheticConfig(seed=0, min_size=48, max_size=96),
                    WriterConfig(max_samples_per_shard=16))  # fmt: skip

    out = f"file://{tmp_path}/stage1"
    model = {"preset": "tiny", "vision": f"file://{tmp_path}/internvit",
             "llm": f"file://{tmp_path}/qwen2"}  # fmt: skip
    job = write_job(tmp_path / "stage1.yaml", name="s1", preset="pretrain-alignment", data=data,
                    output=out, zero=3, interval=1, lr=1e-2, model=model)  # fmt: skip
    job2 = write_job(tmp_path / "stage1-z2.yaml", name="s1z2", preset="pretrain-alignment",
                     data=data, output=f"{out}-z2", zero=2, interval=1, lr=1e-2,
                     model=model)  # fmt: skip
    cmd = [sys.executable, "-m", "sailvl.train.sequence", str(job), str(job2)]
    proc = subprocess.run(
        cmd, env=train_env(tmp_path, free_port()), capture_output=True, text=True, timeout=840
    )
    (tmp_path / "train.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]

    final, _ = load_pretrained(f"{out}/final")
    want = internvit_state(internvit_config(), seed=7)
    vt = final.model.vision_tower.state_dict()
    assert torch.equal(vt["encoder.layer.1.lambda_2"], want["encoder.layers.1.ls2"])
    assert torch.equal(vt["embeddings.cls_token"], want["embeddings.class_embedding"])
    q = want["encoder.layers.0.attn.qkv.weight"].chunk(3)[0]
    assert torch.equal(vt["encoder.layer.0.attention.q_proj.weight"], q)

    step1 = tmp_path / "stage1" / "step-00000001"
    assert (step1 / "_COMMITTED").exists()
    assert list(step1.glob("zero_pp_rank_1_*")), "not a sharded ZeRO checkpoint"
    exported = tmp_path / "exported"
    rc = cli(["export", str(step1), str(exported), "--job-config", str(job)])
    assert rc == 0
    for name in ("config.json", "model.safetensors", "tokenizer.json",
                 "preprocessor_config.json", "_COMMITTED"):  # fmt: skip
        assert (exported / name).exists(), name
    got, _ = load_pretrained(str(exported))
    g, f = got.state_dict(), final.state_dict()
    proj = [k for k in g if "multi_modal_projector" in k]
    assert proj and all(g[k].shape == f[k].shape for k in g)
    assert any(not torch.equal(g[k], f[k]) for k in proj), "export is step 1's, not final's"
    frozen = [k for k in g if "multi_modal_projector" not in k]
    assert all(torch.equal(g[k], f[k]) for k in frozen), "frozen weights changed"

    # `sailvl eval --config` (an EvalSuite's job config, as its pod runs it) loads the
    # exported folder and scores a benchmark.
    from sailvl.api import parse_spec
    from sailvl.api.jobconfig import dump_job_config, job_config
    from sailvl.eval.synthetic import write_synthetic as write_bench

    uris = write_bench(f"file://{tmp_path}/bench", n=2)
    suite = parse_spec("EvalSuite", {
        "model": f"file://{exported}", "modelPreset": "tiny", "accelerator": "cpu",
        "devicesPerPod": 0, "output": f"file://{tmp_path}/eval",
        "benchmarks": [{"name": "synth-ocr", "data": uris["synth-ocr"], "scorer": "anls"}],
        "generation": {"maxNewTokens": 2, "batchSize": 2},
    })  # fmt: skip
    eval_cfg = tmp_path / "eval.yaml"
    eval_cfg.write_text(dump_job_config(job_config("EvalSuite", "exported", "default", suite)))
    monkeypatch.setenv("SAILVL_METRICS_PORT", "0")
    assert cli(["eval", "--config", str(eval_cfg)]) == 0
    res = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert res["benchmarks"]["synth-ocr"]["status"] == "ok"

    # ZeRO-2 (sharded optimizer state, whole module states): the same export path.
    assert cli(["export", f"{out}-z2", str(tmp_path / "z2"), "--job-config", str(job2)]) == 0
    z2, _ = load_pretrained(str(tmp_path / "z2"))
    z2_final, _ = load_pretrained(f"{out}-z2/final")
    g2, f2 = z2.state_dict(), z2_final.state_dict()
    assert any(not torch.equal(g2[k], f2[k]) for k in proj), "z2 export is step 1's"
    assert all(torch.equal(g2[k], f2[k]) for k in frozen)

    # The original layout for serving: the same tensors under InternVL-Chat's names.
    orig_out = tmp_path / "exported-original"
    rc = cli(["export", str(tmp_path / "stage1"), str(orig_out), "--job-config", str(job),
              "--layout", "original"])  # fmt: skip
    assert rc == 0
    cfg_orig = json.loads((orig_out / "config.json").read_text())
    assert cfg_orig["architectures"] == ["InternVLChatModel"] and "llm_config" in cfg_orig
