"""Judge prompts (paper Figures 7 and 10) over any OpenAI-compatible endpoint.

Figure 7 scores a caption against its image; Figure 10 scores SFT samples for
difficulty, complexity and image-text relevance, which the data curation uses to filter
and balance instruction data. The paper shows the prompts as figures; the wording here
is our reconstruction of their intent (criteria, scale, output format), versioned so a
change of wording is visible next to the scores it produced.

Transport: one POST to `<base_url>/chat/completions` per request with urllib (no SDK),
the image inline as a base64 data URL (`image_url` content part, which LMDeploy's
api_server, vLLM and OpenAI all accept). Retries with exponential back-off on
connection errors, timeouts, 429 and 5xx; other HTTP errors fail at once. The API key
comes from an environment variable (a Secret in the pod), never from the config.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sailvl.quality.scores import parse_score, parse_scores

PROMPT_VERSION = "v1"

CAPTION_SCORE_PROMPT = """You are an expert evaluator of image descriptions.
Look at the image and read the caption below. Judge the caption on:
1. Accuracy: every object, attribute, count, relation and text it mentions is really in the image (hallucinations are severe errors).
2. Detail: it covers the salient objects, their attributes and positions, the background, and any visible text.
3. Fluency: it is coherent, well organised and free of repetition.
Give one overall integer score from 1 (poor: wrong or nearly empty) to 5 (excellent: accurate, detailed and fluent).

Caption:
{caption}

Reply with a short justification, then a final line exactly of the form "Score: N"."""

SFT_SCORE_PROMPT = """You are an expert curator of training data for vision-language assistants.
Given the image and the conversation below, rate the sample on three criteria, each an integer from 1 to 5:
- difficulty: how much reasoning, knowledge or perception the answers require (1 trivial, 5 expert-level).
- complexity: how rich the instructions and answers are (1 a single short fact, 5 multi-step, detailed responses).
- relevance: how much the conversation depends on and agrees with the image (1 unrelated or contradicted by the image, 5 fully grounded in it).

Conversation:
{conversation}

Reply with a JSON object only: {{"difficulty": N, "complexity": N, "relevance": N}}"""

SFT_FIELDS = {
    "difficulty": ("difficulty", "难度"),
    "complexity": ("complexity", "复杂度"),
    "relevance": ("relevance", "image-text relevance", "image_text_relevance", "相关性"),
}


@dataclass(kw_only=True)
class JudgeConfig:
    """Where and how to call the judge model."""

    base_url: str  # e.g. http://lmdeploy-judge:23333/v1 (the path before /chat/completions)
    model: str  # model name the server expects
    api_key_env: str = "SAILVL_JUDGE_API_KEY"  # env var holding the key ("" = no auth)
    timeout_s: float = 60.0  # per-request timeout
    retries: int = 3  # extra attempts on connection errors, 429 and 5xx
    backoff_s: float = 1.0  # first back-off; doubles each retry
    max_tokens: int = 512  # reply budget
    temperature: float = 0.0  # deterministic judging

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url: must be an http(s) URL")
        if not self.model:
            raise ValueError("model: must be set")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s: must be > 0")
        if self.retries < 0:
            raise ValueError("retries: must be >= 0")
        if self.backoff_s < 0:
            raise ValueError("backoff_s: must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("max_tokens: must be >= 1")


class JudgeError(RuntimeError):
    """The endpoint could not be reached or answered with an error after retries."""


def image_part(image: bytes) -> dict[str, Any]:
    """An OpenAI `image_url` content part carrying the image inline."""
    url = "data:image/jpeg;base64," + base64.b64encode(image).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


class JudgeClient:
    """A minimal chat-completions client (urllib) with retries."""

    def __init__(self, cfg: JudgeConfig) -> None:
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"

    def chat(self, text: str, image: bytes | None = None) -> str:
        content: Any = (
            text if image is None else [{"type": "text", "text": text}, image_part(image)]
        )
        body = {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.cfg.max_tokens,
            "temperature": self.cfg.temperature,
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env, "") if self.cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        delay = self.cfg.backoff_s
        for attempt in range(self.cfg.retries + 1):
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    reply = json.loads(resp.read())
                return str(reply["choices"][0]["message"].get("content") or "")
            except urllib.error.HTTPError as exc:
                retryable = exc.code == 429 or exc.code >= 500
                err: Exception = exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                retryable, err = True, exc
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise JudgeError(f"judge: malformed chat-completions reply: {exc}") from exc
            if not retryable or attempt == self.cfg.retries:
                raise JudgeError(f"judge: {self.url}: {err}") from err
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


@dataclass(kw_only=True)
class Judgement:
    scores: dict[str, float | None]  # None: the reply held no parseable score
    reply: str  # the judge's raw reply, kept for audit
    prompt_version: str = PROMPT_VERSION


def score_caption(client: JudgeClient, caption: str, image: bytes | None) -> Judgement:
    """Figure 7: one 1-5 score for a caption of `image`."""
    reply = client.chat(CAPTION_SCORE_PROMPT.replace("{caption}", caption), image)
    return Judgement(scores={"score": parse_score(reply)}, reply=reply)


def format_conversation(turns: Sequence[dict[str, str]]) -> str:
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    return "\n".join(f"{names.get(t['role'], t['role'])}: {t['content']}" for t in turns)


def score_sft(
    client: JudgeClient, conversations: Sequence[dict[str, str]], image: bytes | None
) -> Judgement:
    """Figure 10: difficulty, complexity and image-text relevance (1-5 each)."""
    prompt = SFT_SCORE_PROMPT.replace("{conversation}", format_conversation(conversations))
    reply = client.chat(prompt.replace("{{", "{").replace("}}", "}"), image)
    return Judgement(scores=parse_scores(reply, SFT_FIELDS), reply=reply)
