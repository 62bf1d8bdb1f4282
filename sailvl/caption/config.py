"""Configuration of the recaption worker: one `CaptionConfig` per pod.

The operator renders a CaptionJob spec into one job-config file (YAML or JSON, keys in
snake_case as the fields below); `CaptionConfig.from_dict` / `from_file` read it back.
Every section is a kw_only dataclass whose `__post_init__` rejects bad values with a
ValueError naming the field, so a broken config fails at start, not mid-shard.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("transformers", "lmdeploy")
LANGS = ("en", "zh", "auto")
DEDUP_MODES = ("none", "exact", "near")
FAILED_ROWS = ("mark", "drop")


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name}: {msg}")


@dataclass(kw_only=True)
class EngineConfig:
    """Inference-engine settings shared by both backends (each uses what it supports)."""

    tp: int = 1  # tensor-parallel degree (lmdeploy); transformers uses one device
    batch_size: int = 8  # samples per generate call (and lmdeploy max_batch_size)
    session_len: int = 8192  # max prompt + generated tokens per request (lmdeploy)
    max_dynamic_patch: int = 6  # max 448 px tiles per image (InternVL dynamic_preprocess)
    use_thumbnail: bool = True  # add a 448 px thumbnail tile when an image has > 1 tile
    cache_max_entry_count: float = 0.8  # lmdeploy KV-cache share of free device memory
    vision_batch_size: int = 8  # lmdeploy VisionConfig.max_batch_size
    device: str = "auto"  # auto | cpu | cuda | npu (npu selects lmdeploy's pytorch engine)
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 (transformers backend)

    def __post_init__(self) -> None:
        _check(self.tp >= 1, "engine.tp", "must be >= 1")
        _check(self.batch_size >= 1, "engine.batch_size", "must be >= 1")
        _check(self.session_len >= 64, "engine.session_len", "must be >= 64")
        _check(self.max_dynamic_patch >= 1, "engine.max_dynamic_patch", "must be >= 1")
        _check(0 < self.cache_max_entry_count <= 1, "engine.cache_max_entry_count", "in (0, 1]")
        _check(self.vision_batch_size >= 1, "engine.vision_batch_size", "must be >= 1")
        _check(self.device in ("auto", "cpu", "cuda", "npu"), "engine.device", "auto|cpu|cuda|npu")
        _check(
            self.dtype in ("auto", "float32", "bfloat16", "float16"),
            "engine.dtype",
            "auto|float32|bfloat16|float16",
        )


@dataclass(kw_only=True)
class PromptConfig:
    """How the caption request is phrased (see `sailvl.caption.prompts`)."""

    lang: str = "en"  # en | zh | auto (auto: the sample's `lang` column, else en)
    use_alt_text: bool = True  # put the sample's alt-text into the prompt when it has one
    version: str = "v1"  # prompt-set version, written next to every caption
    max_alt_text_chars: int = 512  # alt-text longer than this is cut (noisy web text)

    def __post_init__(self) -> None:
        _check(self.lang in LANGS, "prompt.lang", f"one of {LANGS}")
        from sailvl.caption.prompts import PROMPT_SETS

        _check(self.version in PROMPT_SETS, "prompt.version", f"one of {sorted(PROMPT_SETS)}")
        _check(self.max_alt_text_chars >= 0, "prompt.max_alt_text_chars", "must be >= 0")


@dataclass(kw_only=True)
class GenerationConfig:
    """Decoding settings; temperature 0 means greedy."""

    max_new_tokens: int = 1024  # upper bound on caption length in tokens
    temperature: float = 0.0  # 0 = greedy decoding
    top_p: float = 1.0  # nucleus sampling mass (used when temperature > 0)
    top_k: int = 0  # 0 = no top-k cut (used when temperature > 0)
    repetition_penalty: float = 1.05  # > 1 discourages looping captions
    seed: int = 0  # sampling seed (reproducible reruns when sampling)

    def __post_init__(self) -> None:
        _check(self.max_new_tokens >= 1, "generation.max_new_tokens", "must be >= 1")
        _check(self.temperature >= 0, "generation.temperature", "must be >= 0")
        _check(0 < self.top_p <= 1, "generation.top_p", "in (0, 1]")
        _check(self.top_k >= 0, "generation.top_k", "must be >= 0")
        _check(self.repetition_penalty > 0, "generation.repetition_penalty", "must be > 0")


@dataclass(kw_only=True)
class FilterConfig:
    """Post-filter of generated captions (see `sailvl.caption.postfilter`)."""

    min_chars: int = 1  # captions shorter than this (after strip) are dropped
    max_chars: int = 20000  # captions longer than this are dropped (runaway generation)
    min_words: int = 0  # word-count floor (whitespace words, or CJK characters)
    max_words: int = 0  # word-count ceiling; 0 = no ceiling
    dedup: str = "exact"  # none | exact (normalised text) | near (shingle Jaccard)
    near_threshold: float = 0.9  # Jaccard of word 3-gram shingles counted as a duplicate
    failed_rows: str = "mark"  # mark: keep the row, caption "" + reason; drop: leave it out

    def __post_init__(self) -> None:
        _check(self.min_chars >= 0, "filter.min_chars", "must be >= 0")
        _check(self.max_chars >= max(1, self.min_chars), "filter.max_chars", ">= min_chars")
        _check(self.min_words >= 0, "filter.min_words", "must be >= 0")
        _check(
            self.max_words == 0 or self.max_words >= self.min_words,
            "filter.max_words",
            "0 or >= min_words",
        )
        _check(self.dedup in DEDUP_MODES, "filter.dedup", f"one of {DEDUP_MODES}")
        _check(0 < self.near_threshold <= 1, "filter.near_threshold", "in (0, 1]")
        _check(self.failed_rows in FAILED_ROWS, "filter.failed_rows", f"one of {FAILED_ROWS}")


@dataclass(kw_only=True)
class CaptionConfig:
    """One caption pod: which shards, which model, how to prompt, generate and filter."""

    input_uri: str  # input dataset prefix (manifest.json + Parquet shards)
    # dataset | webdataset (img2dataset tars) | parquet (image / image-URL Parquet); see
    # sailvl.data.importers.caption_input for what each reads and what a URL means.
    input_format: str = "dataset"
    allow_http: bool = False  # parquet URLs: fetch http(s) too (else file:// and s3:// only)
    output_uri: str  # output dataset prefix; one output shard per input shard
    model_uri: str  # captioner checkpoint (HF format folder; local path or object store)
    backend: str = "transformers"  # transformers | lmdeploy
    model_name: str = ""  # written to the `caption_model` column; default: model_uri
    engine: EngineConfig = field(default_factory=EngineConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    shard_index: int = -1  # this pod's index k; -1 = env JOB_COMPLETION_INDEX (else 0)
    shard_count: int = 1  # number of pods (Job indexes)
    # dynamic: pods claim shards on the output store (sailvl.caption.claims); static: pod k
    # handles input shards i with i % shard_count == k.
    assignment: str = "dynamic"
    claim_timeout_s: float = 7200.0  # dynamic: a claim older than this may be taken over
    max_takeovers: int = 1  # dynamic: takeovers per shard (0 = stragglers never duplicated)
    claim_poll_s: float = 5.0  # dynamic: how often a pod standing by at the tail looks again
    shard_retries: int = 2  # extra attempts for a shard whose processing raised
    prefetch_shards: int = 1  # decoded shards buffered ahead of generation
    stats_sample: int = 0  # output captions sampled for Table 1 stats in status; 0 = off
    metrics_port: int = 0  # Prometheus port (pods: 9400); 0 = no server (still counted)
    job_name: str = ""  # CaptionJob name: the `name` label of metrics; env SAILVL_JOB_NAME
    job_namespace: str = ""  # its namespace: the `namespace` label; env SAILVL_JOB_NAMESPACE
    progress_interval_s: float = 10.0  # seconds between progress callbacks / log lines

    def __post_init__(self) -> None:
        for name in ("input_uri", "output_uri", "model_uri"):
            _check(bool(getattr(self, name)), name, "must be set")
        _check(
            self.input_uri.rstrip("/") != self.output_uri.rstrip("/"),
            "output_uri",
            "must differ from input_uri",
        )
        _check(self.backend in BACKENDS, "backend", f"one of {BACKENDS}")
        formats = ("dataset", "webdataset", "parquet")
        _check(self.input_format in formats, "input_format", f"one of {formats}")
        _check(self.shard_count >= 1, "shard_count", "must be >= 1")
        if self.shard_index < 0:
            self.shard_index = int(os.environ.get("JOB_COMPLETION_INDEX", "0"))
        _check(self.shard_index < self.shard_count, "shard_index", "must be < shard_count")
        _check(self.assignment in ("dynamic", "static"), "assignment", "dynamic or static")
        _check(self.claim_timeout_s > 0, "claim_timeout_s", "must be > 0")
        _check(0 <= self.max_takeovers <= 9, "max_takeovers", "0..9")
        _check(self.claim_poll_s > 0, "claim_poll_s", "must be > 0")
        _check(self.shard_retries >= 0, "shard_retries", "must be >= 0")
        _check(self.prefetch_shards >= 1, "prefetch_shards", "must be >= 1")
        _check(self.stats_sample >= 0, "stats_sample", "must be >= 0")
        _check(0 <= self.metrics_port < 65536, "metrics_port", "0..65535")
        _check(self.progress_interval_s > 0, "progress_interval_s", "must be > 0")
        self.job_name = self.job_name or os.environ.get("SAILVL_JOB_NAME", "")
        self.job_namespace = self.job_namespace or os.environ.get("SAILVL_JOB_NAMESPACE", "")
        if not self.model_name:
            self.model_name = self.model_uri.rstrip("/")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaptionConfig:
        """Build from a plain dict (nested sections as dicts); unknown keys are errors."""
        sections = {
            "engine": EngineConfig,
            "prompt": PromptConfig,
            "generation": GenerationConfig,
            "filter": FilterConfig,
        }
        kwargs: dict[str, Any] = {}
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"{key}: unknown field")
            if key in sections and isinstance(value, dict):
                sub = sections[key]
                sub_known = {f.name for f in dataclasses.fields(sub)}
                for k in value:
                    if k not in sub_known:
                        raise ValueError(f"{key}.{k}: unknown field")
                value = sub(**value)
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> CaptionConfig:
        """Read a YAML or JSON job-config file; a top-level `caption:` key is unwrapped."""
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        if isinstance(data, dict) and set(data) == {"caption"}:
            data = data["caption"]
        if not isinstance(data, dict):
            raise ValueError("config: must be a mapping")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
