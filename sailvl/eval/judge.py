"""The eval judge: the shared chat-completions client with VLMEvalKit's failure value.

``Judge.generate(prompt, temperature)`` sends ``prompt`` as one user message through
:mod:`sailvl.runtime.openai_client` (``<endpoint>/chat/completions``, retries with a
doubling back-off on transient failures) and returns the stripped reply. A call that
still fails (connection refused, timeout, an HTTP error, a body that is not the
expected JSON, an empty reply) returns :data:`FAIL_MSG`, the string VLMEvalKit's API
wrappers return: scorers treat it as "no answer" exactly as VLMEvalKit does, so an
unreachable judge degrades scoring instead of crashing the evaluation. ``calls`` and
``failures`` count requests and failed generations for the results file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sailvl.runtime.openai_client import ChatClient, ChatConfig, ChatError

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
        self.chat_config()  # the transport validates the other fields, by the same names

    def chat_config(self) -> ChatConfig:
        """The shared client's settings for this judge."""
        return ChatConfig(
            base_url=self.endpoint,
            model=self.model,
            api_key_env=self.api_key_env,
            timeout_s=self.timeout_s,
            retries=self.retries,
            backoff_s=self.backoff_s,
            max_tokens=self.max_tokens,
        )


class Judge:
    """A judge on one endpoint; FAIL_MSG instead of exceptions."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.client = ChatClient(config.chat_config())
        self.failures = 0

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def calls(self) -> int:
        """HTTP requests made, retries included."""
        return self.client.attempts

    @property
    def last_error(self) -> str | None:
        return self.client.last_error

    def generate(self, prompt: str, temperature: float = 0.0) -> str:
        """The judge's reply, or FAIL_MSG after all attempts failed."""
        try:
            return self.client.complete(prompt, temperature=temperature)
        except ChatError:
            self.failures += 1
            return FAIL_MSG

    def working(self) -> bool:
        """One probe request, as VLMEvalKit checks a judge before using it."""
        return FAIL_MSG not in self.generate("Hello!")
