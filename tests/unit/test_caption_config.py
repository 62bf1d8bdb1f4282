"""Caption config validation, prompts and the post-filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sailvl.caption.config import CaptionConfig, FilterConfig
from sailvl.caption.postfilter import PostFilter, count_words, shingles
from sailvl.caption.prompts import build_prompt, clean_alt_text, resolve_lang

BASE = {"input_uri": "s3://b/in", "output_uri": "s3://b/out", "model_uri": "s3://b/m"}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"backend": "vllm"}, "backend"),
        ({"output_uri": "s3://b/in/"}, "output_uri"),
        ({"shard_count": 0}, "shard_count"),
        ({"shard_index": 3, "shard_count": 3}, "shard_index"),
        ({"shard_retries": -1}, "shard_retries"),
        ({"engine": {"tp": 0}}, "engine.tp"),
        ({"engine": {"device": "tpu"}}, "engine.device"),
        ({"prompt": {"lang": "fr"}}, "prompt.lang"),
        ({"prompt": {"version": "v9"}}, "prompt.version"),
        ({"generation": {"top_p": 0}}, "generation.top_p"),
        ({"filter": {"dedup": "fuzzy"}}, "filter.dedup"),
        ({"filter": {"min_chars": 10, "max_chars": 5}}, "filter.max_chars"),
        ({"filter": {"bogus": 1}}, "filter.bogus"),
        ({"colour": "red"}, "colour"),
        ({"model_uri": ""}, "model_uri"),
    ],
)
def test_invalid_configs_name_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        CaptionConfig.from_dict({**BASE, **patch})


def test_shard_index_from_env_and_yaml_file(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    p = tmp_path / "c.yaml"
    p.write_text(
        "caption:\n  input_uri: s3://b/in\n  output_uri: s3://b/out\n"
        "  model_uri: s3://b/m\n  shard_count: 4\n  engine: {batch_size: 5}\n"
    )
    cfg = CaptionConfig.from_file(p)
    assert cfg.shard_index == 2 and cfg.engine.batch_size == 5 and cfg.model_name == "s3://b/m"


def test_prompts() -> None:
    text, kind = build_prompt(
        version="v1", prompt_lang="en", sample_lang="zh", alt_text="  A  {cat} ", use_alt_text=True
    )
    assert kind == "recaption" and '"A {cat}"' in text
    text, kind = build_prompt(
        version="v1", prompt_lang="auto", sample_lang="zh-CN", alt_text="猫", use_alt_text=False
    )
    assert kind == "detail" and text.startswith("请详细描述")
    assert resolve_lang("auto", None) == "en" and resolve_lang("zh", "en") == "zh"
    assert clean_alt_text("word " * 10, 12) == "word word"


def test_postfilter_lengths_and_exact_dups() -> None:
    f = PostFilter(FilterConfig(min_chars=5, max_chars=40, max_words=6))
    got = [
        f.check(c)
        for c in [
            "  ",
            "tiny",
            "A cat sits on a mat.",
            "a CAT sits, on a mat!",
            "one two three four five six seven",
            "x" * 41,
        ]
    ]
    assert got == ["empty_caption", "too_short", "ok", "duplicate", "too_long", "too_long"]
    assert f.counts == {"ok": 1, "empty_caption": 1, "too_short": 1, "duplicate": 1, "too_long": 2}


def test_postfilter_near_duplicates() -> None:
    base = " ".join(f"w{i}" for i in range(60))
    near = base.replace("w30", "zz")  # Jaccard of 3-gram shingles ~ 0.9
    far = " ".join(f"v{i}" for i in range(60))
    exact = PostFilter(FilterConfig(dedup="exact"))
    assert [exact.check(c) for c in (base, near)] == ["ok", "ok"]
    f = PostFilter(FilterConfig(dedup="near", near_threshold=0.85))
    assert [f.check(c) for c in (base, near, far)] == ["ok", "duplicate", "ok"]
    none = PostFilter(FilterConfig(dedup="none"))
    assert [none.check(c) for c in (base, base)] == ["ok", "ok"]


def test_word_counting() -> None:
    assert count_words("一只猫 sits here") == 5
    assert len(shingles("猫坐在沙发上")) == 3
