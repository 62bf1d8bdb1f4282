"""An OpenAI-compatible chat-completions judge client on the standard library (urllib).

``Judge.generate(prompt, temperature)`` posts ``{"model", "messages": [{"role": "user",
"content": prompt}], "temperature", "max_tokens"}`` to ``<endpoint>/chat/completions``
and returns ``choices[0].message.content``. Every failure (connection refused, timeout,
HTTP error, a body that is not the expected JSON, an empty reply) is retried
``retries`` times with a doubling back-off and then returns :data:`FAIL_MSG`, the string
VLMEvalKit's API wrappers return: scorers treat it as "no answer" exactly as VLMEvalKit
does, so an unreachable judge degrades scoring instead of crashing the evaluation.
``calls`` and ``failures`` count requests and failed generations for the results file.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from .scorers.base import FAIL_MSG


@dataclass(kw_only=True)
class JudgeConfig:
    """Where the judge lives and how to call it."""

    endpoint: str
    """Base URL of an OpenAI-compatible API, e.g. ``http://judge:8000/v1``."""
    model: str
    """Model name sent in each request."""
    api_key_env: str | None = "SAILVL_JUDGE_API_KEY"
    """Environment variable holding the API key (from a Secret); unset/None: no key."""
    timeout_s: float = 60.0
    """Per-request timeout in seconds."""
    retries: int = 2
    """Extra attempts after a failed request."""
    backoff_s: float = 1.0
    """First back-off between attempts; doubles each time."""
    max_tokens: int = 512
    """Reply length limit sent to the judge."""

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint: must be an http(s) URL, got {self.endpoint!r}")
        if not self.model:
            raise ValueError("model: must not be empty")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s: must be > 0, got {self.timeout_s}")
        if self.retries < 0:
            raise ValueError(f"retries: must be >= 0, got {self.retries}")
        if self.backoff_s < 0:
            raise ValueError(f"backoff_s: must be >= 0, got {self.backoff_s}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be >= 1, got {self.max_tokens}")


class Judge:
    """A chat-completions client; thread-compatible (no shared mutable request state)."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.calls = 0
        self.failures = 0
        self.last_error: str | None = None

    @property
    def url(self) -> str:
        return self.config.endpoint.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _once(self, prompt: str, temperature: float) -> str:
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": self.config.max_tokens,
        }
        req = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=self._headers(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        content = payload["choices"][0]["message"]["content"]
        if not isinstance(content, str) or not content.strip():
            raise ValueError("empty reply")
        return content.strip()

    def generate(self, prompt: str, temperature: float = 0.0) -> str:
        """The judge's reply, or FAIL_MSG after all attempts failed."""
        delay = self.config.backoff_s
        for attempt in range(self.config.retries + 1):
            self.calls += 1
            try:
                return self._once(prompt, temperature)
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                OSError,
                ValueError,
                KeyError,
                IndexError,
                TypeError,
            ) as err:
                self.last_error = f"{type(err).__name__}: {err}"
            if attempt < self.config.retries:
                time.sleep(delay)
                delay *= 2
        self.failures += 1
        return FAIL_MSG

    def working(self) -> bool:
        """One probe request, as VLMEvalKit checks a judge before using it."""
        return FAIL_MSG not in self.generate("Hello!")
