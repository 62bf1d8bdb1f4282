"""Judge prompts (paper Figures 7 and 10) over any OpenAI-compatible endpoint.

Figure 7 scores a caption against its image; Figure 10 scores SFT samples for
difficulty, complexity and image-text relevance, which the data curation uses to filter
and balance instruction data. The paper shows the prompts as figures; the wording here
is our reconstruction of their intent (criteria, scale, output format), versioned so a
change of wording is visible next to the scores it produced.

Transport: `sailvl.runtime.openai_client` (one POST per request to
`<base_url>/chat/completions`, the image inline as a base64 data URL, retries with
exponential back-off on transient failures, the API key from an environment variable).
A request that still fails raises `JudgeError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sailvl.quality.scores import parse_score, parse_scores
from sailvl.runtime.openai_client import ChatClient, ChatConfig, ChatError, user_content
from sailvl.runtime.openai_client import image_part as image_part

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

SFT_FIELDS: dict[str, Sequence[str]] = {
    "difficulty": ("difficulty", "难度"),
    "complexity": ("complexity", "复杂度"),
    "relevance": ("relevance", "image-text relevance", "image_text_relevance", "相关性"),
}


@dataclass(kw_only=True)
class JudgeConfig(ChatConfig):
    """Where and how to call the judge model (transport fields: `ChatConfig`)."""

    retries: int = 3  # extra attempts on transient failures (connection, 408, 429, 5xx)
    temperature: float = 0.0  # deterministic judging

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")


JudgeError = ChatError
"""The endpoint could not be reached or answered with an error after retries."""


class JudgeClient:
    """The shared chat-completions client with the judge's sampling temperature."""

    def __init__(self, cfg: JudgeConfig) -> None:
        self.cfg = cfg
        self.client = ChatClient(cfg)
        self.url = self.client.url

    def chat(self, text: str, image: bytes | None = None) -> str:
        """The judge's reply to `text` about `image`; JudgeError when it fails."""
        return self.client.complete(user_content(text, image), temperature=self.cfg.temperature)


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
