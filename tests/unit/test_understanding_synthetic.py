"""The understanding suite's stand-ins: TSV shape, real Chinese glyphs, a loud refusal
without a CJK font, and the whole suite run through the eval runner as an EvalSuite."""

from __future__ import annotations

import ast
import base64
import io
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sailvl.data import fonts as fonts_mod
from sailvl.data.fonts import FontSet, MissingFontError, discover_fonts, require_cjk_font
from sailvl.eval.synthetic_understanding import task_rows, understanding_tsv, write_understanding
from sailvl.eval.tsv import parse_tsv
from sailvl.eval.understanding import COLUMNS, TASKS

NO_CJK = FontSet(latin=(None,), cjk=())


def _cjk_font() -> str:
    found = discover_fonts()
    assert found.cjk, "no CJK font installed: run `make tools` (tests/install-fonts.sh)"
    return found.cjk[0]


def _glyph(path: str | None, ch: str) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (40, 40), 255)
    ImageDraw.Draw(img).text((4, 4), ch, fill=0, font=fonts_mod.load_font(path, 28))
    return img.tobytes()


def test_the_cjk_font_really_draws_chinese_glyphs() -> None:
    path = _cjk_font()
    chars = "数据北京欢迎"
    assert fonts_mod._covers(path, chars)
    real = [_glyph(path, ch) for ch in chars]
    # Each character is its own glyph; a font without them draws one and the same
    # replacement box (tofu) or nothing for every character.
    assert len(set(real)) == len(chars)
    tofu = [_glyph(None, ch) for ch in chars]
    assert len(set(tofu)) == 1, "PIL's default font was expected to lack CJK glyphs"
    assert all(g != tofu[0] for g in real)
    assert require_cjk_font() == path


def test_chinese_tasks_refuse_without_a_cjk_font(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(MissingFontError, match="fonts-wqy-zenhei"):
        understanding_tsv("synthdog-zh", n=2, fonts=NO_CJK)
    # English tasks and Chinese captions (no text in the image) need no CJK font.
    assert understanding_tsv("synthdog-en", n=2, fonts=NO_CJK)
    assert understanding_tsv("detailcaps-cn", n=2, fonts=NO_CJK)
    monkeypatch.setattr("sailvl.eval.synthetic_understanding.discover_fonts", lambda: NO_CJK)
    with pytest.raises(MissingFontError, match="make tools"):
        write_understanding(f"file://{tmp_path}/all")
    assert not (tmp_path / "all").exists()  # refused before writing anything
    english = write_understanding(f"file://{tmp_path}/en", n=2, names=["synthdog-en"])
    assert list(english) == ["synthdog-en"] and (tmp_path / "en" / "synthdog-en.tsv").exists()
    with pytest.raises(ValueError, match="docvqa-500"):
        write_understanding(f"file://{tmp_path}/x", names=["docvqa-500"])


def test_stand_ins_have_the_documented_shape_and_are_deterministic() -> None:
    for name, task in TASKS.items():
        data = understanding_tsv(name, n=4, seed=2)
        assert data == understanding_tsv(name, n=4, seed=2)
        rows, errors, total = parse_tsv(data)
        assert total == 4 and not errors
        assert list(rows[0]) == COLUMNS
        assert {r["question"] for r in rows} == {task.question}
        assert all(len(r["image"]) > 64 for r in rows)  # every row has its own image
        if task.kind == "caption":
            refs = [ast.literal_eval(r["answer"]) for r in rows]
            assert all(isinstance(x, list) and len(x) == 3 for x in refs)  # three references
            assert all(len(set(x)) == 3 for x in refs)
        has_han = any("\u4e00" <= ch <= "\u9fff" for r in rows for ch in r["answer"])
        assert has_han == (task.lang == "zh"), name


def test_synthdog_zh_images_hold_the_answer_in_chinese_glyphs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _cjk_font()
    (row,) = task_rows("synthdog-zh", 1, random.Random(0))
    assert fonts_mod._covers(path, row["answer"].replace("\n", ""))
    # The same row drawn with PIL's default font (what a silent fallback would draw):
    # same text, same layout draws, but tofu instead of glyphs, so another image.
    monkeypatch.setattr("sailvl.eval.synthetic_understanding.require_cjk_font", lambda f: None)
    (tofu,) = task_rows("synthdog-zh", 1, random.Random(0))
    assert tofu["answer"] == row["answer"]
    assert tofu["image"] != row["image"]


def _pixels(image_b64: str) -> bytes:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(image_b64))).convert("RGB").tobytes()


class Reader:
    """Reads every transcription perfectly (looked up by image) and captions badly."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.text = {_pixels(r["image"]): r["answer"] for r in rows}

    def generate(self, batch: Sequence[tuple[list[Any], str]], *, max_new_tokens: int) -> list[str]:
        assert all(len(images) == 1 for images, _ in batch)
        return [self.text.get(images[0].tobytes(), "A picture.") for images, _ in batch]


class Judge:
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, prompt: str, temperature: float = 0.0) -> str:
        self.prompts.append(prompt)
        return "6"


def test_the_understanding_suite_runs_as_an_evalsuite(tmp_path: Path) -> None:
    from sailvl.api.evalsuite import EvalSuiteSpec
    from sailvl.eval.config import from_spec
    from sailvl.eval.runner import run_eval

    uris = write_understanding(f"file://{tmp_path}/bench", n=6, seed=0)
    spec = EvalSuiteSpec.model_validate(
        {
            "model": "file:///m",
            "suite": "understanding",
            "benchmarks": [{"name": "synthdog-zh", "subset": 3, "subsetSeed": 1}],
            "dataRoot": f"file://{tmp_path}/bench",
            "output": f"file://{tmp_path}/out",
            "judge": {"endpoint": "http://127.0.0.1:9/v1", "model": "j"},
        }
    )
    cfg = from_spec(spec, env={})
    rows = [
        r for n in ("idl-wds", "synthdog-zh") for r in parse_tsv(Path(uris[n][7:]).read_bytes())[0]
    ]
    judge = Judge()
    results = run_eval(cfg, Reader(rows), judge=judge)
    benches = results["benchmarks"]
    assert set(benches) == set(TASKS)
    assert benches["synthdog-zh"]["scored_rows"] == 3 and benches["synthdog-zh"]["subset_seed"] == 1
    assert benches["idl-wds"]["scored_rows"] == 6  # the file holds fewer than 500 rows
    for name in ("idl-wds", "synthdog-zh"):  # read perfectly
        assert benches[name]["score"] == pytest.approx(100.0)
        assert benches[name]["metrics"]["accuracy"] == pytest.approx(100.0)
    for name in ("docstruct", "synthtext", "synthdog-en"):  # "A picture." is not the text
        assert 0 <= benches[name]["score"] < 50
    assert benches["detailcaps-cn"]["score"] == pytest.approx(60.0)  # judge grade 6 x 10
    assert benches["detailcaps"]["metrics"]["references"] == {"3": 6}
    assert sum("[3] " in p for p in judge.prompts) == 12  # all 3 references, both sets
    assert results["overall"] is None  # no Table 4 category among these
    assert results["understanding"] == pytest.approx(
        sum(b["score"] for b in benches.values()) / len(benches)
    )


def test_the_demo_writes_the_understanding_sets_its_pretraining_evals_read() -> None:
    import yaml

    from sailvl.local.assets import UNDERSTANDING

    demo = Path(__file__).resolve().parents[2] / "examples" / "demo" / "curriculum.yaml"
    spec = yaml.safe_load(demo.read_text())["spec"]
    named = {
        b["name"]
        for st in spec["stages"][:2]  # the two pretraining stages
        for b in (st.get("eval") or {}).get("benchmarks", [])
    }
    assert named == set(UNDERSTANDING) and named <= set(TASKS)
    # Neither a judge (captions) nor a CJK font (synthdog-zh) is needed by the demo.
    assert all(TASKS[n].kind == "transcription" and TASKS[n].lang == "en" for n in named)
