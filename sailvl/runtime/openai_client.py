"""The one OpenAI-compatible chat-completions client, on the standard library (urllib).

Both judges use it: the eval judge (`sailvl.eval.judge`, benchmark answer matching and
grading) and the data-quality judge (`sailvl.quality.judge`, caption and SFT scores).
They differ only in what they do when a call finally fails (the eval judge returns
VLMEvalKit's FAIL_MSG, the quality judge raises); the request, the headers, the reply
parsing and the retry policy are written here once.

Request: one POST of `{"model", "messages": [{"role": "user", "content"}], "max_tokens",
"temperature"}` to `<base_url>/chat/completions`. `content` is a string, or a list of
parts when an image goes with the text (`image_part`: the image inline as a base64 data
URL, which LMDeploy's api_server, vLLM and OpenAI all accept). The API key comes from an
environment variable (a Secret in the pod), never from a config file, and is sent as
`Authorization: Bearer`.

Reply: `choices[0].message.content`, stripped. A reply that is not that JSON shape, or
whose content is empty, counts as a failed attempt.

Retries: `retries` extra attempts, sleeping `backoff_s`, doubling each time, on transient
failures: connection errors and timeouts, HTTP 408, 429 and 5xx, malformed or empty
replies (an overloaded proxy truncates bodies). Any other HTTP status (400, 401, 404,
...) will not change on a retry and fails at once. The final failure is a `ChatError`.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = frozenset({408, 429})  # plus every 5xx


@dataclass(kw_only=True)
class ChatConfig:
    """Where the chat-completions server lives and how to call it."""

    base_url: str  # e.g. http://judge:23333/v1 (the path before /chat/completions)
    model: str  # model name sent in each request
    api_key_env: str | None = "SAILVL_JUDGE_API_KEY"  # env var holding the key; None/"": none
    timeout_s: float = 60.0  # per-request timeout in seconds
    retries: int = 2  # extra attempts after a transient failure
    backoff_s: float = 1.0  # first sleep between attempts; doubles each time
    max_tokens: int = 512  # reply length limit sent with each request

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: must be an http(s) URL, got {self.base_url!r}")
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


class ChatError(RuntimeError):
    """A request failed; `transient` says whether another attempt could succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def image_part(image: bytes) -> dict[str, Any]:
    """An OpenAI `image_url` content part carrying the image inline."""
    url = "data:image/jpeg;base64," + base64.b64encode(image).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


def user_content(text: str, image: bytes | None = None) -> Any:
    """The user message content: the text alone, or text and image parts."""
    return text if image is None else [{"type": "text", "text": text}, image_part(image)]


class ChatClient:
    """Posts chat completions with retries. `attempts` counts HTTP requests made;
    `last_error` describes the latest failed one."""

    def __init__(self, config: ChatConfig) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.attempts = 0
        self.last_error: str | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        env = self.config.api_key_env
        key = os.environ.get(env, "") if env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _once(self, data: bytes) -> str:
        req = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:  # before URLError: it is a subclass
            transient = err.code in RETRY_STATUSES or err.code >= 500
            raise ChatError(f"{self.url}: HTTP {err.code}", transient=transient) from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            raise ChatError(f"{self.url}: {type(err).__name__}: {err}", transient=True) from err
        try:
            content = json.loads(raw.decode("utf-8"))["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            msg = f"{self.url}: malformed chat-completions reply: {type(err).__name__}: {err}"
            raise ChatError(msg, transient=True) from err
        if not isinstance(content, str) or not content.strip():
            raise ChatError(f"{self.url}: empty reply", transient=True)
        return content.strip()

    def complete(self, content: Any, *, temperature: float = 0.0) -> str:
        """The reply to one user message (`user_content`); ChatError after retries."""
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.config.max_tokens,
            "temperature": temperature,
        }
        data = json.dumps(body).encode()
        delay = self.config.backoff_s
        for attempt in range(self.config.retries + 1):
            self.attempts += 1
            try:
                return self._once(data)
            except ChatError as err:
                self.last_error = str(err)
                if not err.transient or attempt == self.config.retries:
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def add_judge_arguments(p: Any, *, concurrency: int, timeout: float) -> None:
    """The judge-endpoint options every judging command shares (`sailvl data score`,
    `sailvl stats compare`); the defaults that differ between them are parameters."""
    p.add_argument("--judge-url", required=True, help="OpenAI-protocol base URL, e.g. .../v1")
    p.add_argument("--model", default="judge", help="model name sent to the judge")
    p.add_argument(
        "--concurrency", type=int, default=concurrency, help="requests in flight at most"
    )
    p.add_argument("--retries", type=int, default=3, help="extra attempts per request")
    p.add_argument("--timeout", type=float, default=timeout, help="seconds per request")
