"""Judge prompts (paper Figures 7 and 10) over any OpenAI-compatible endpoint.

Figure 7 scores a caption against a ground-truth caption; Figure 10 scores SFT samples
for difficulty, complexity and image-text relevance, which the data curation uses to
filter and balance instruction data. The paper shows the prompts as figures; the wording
here is ours, versioned so a change of wording is visible next to the scores it produced.

The caption rubric (`caption_score_prompt`, Figure 7) keeps what the paper fixes:
- reference-based: the judge compares the caption with ground-truth caption(s);
- the criteria: accuracy of objects, attributes, relations, counts and visible text
  against the reference, hallucinated content penalised, then completeness and detail;
- a 1-10 integer scale and a reply that is the score only.
Where ours differs from the paper's wording: several references may be given at once
(DetailCaps has three per image; the judge is told that a detail found in any of them is
supported, so a correct detail only one annotator wrote is not punished as a
hallucination); fluency is not a criterion (the paper's prompt does not list it); the
image itself may be attached (Figure 7 is text-only; without an image the judge relies on
the references alone, which is the paper's setting). Replies are parsed leniently
(`sailvl.quality.scores.parse_score` on [1, 10]): "8", "Score: 8" and "8/10" all give 8;
anything outside 1-10 is no score (None), never a guess. On the suite's 0-100 scale a
grade g is reported as 10 * g (`caption_percent`), so 100 is a perfect caption.

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

CAPTION_PROMPT_VERSION = "v2"  # v1: 1-5, no reference; v2: Figure 7's 1-10 against references
CAPTION_SCALE = (1.0, 10.0)

CAPTION_SCORE_PROMPT = """You are an expert judge of image captions.
Compare the candidate caption with the ground-truth caption(s) of the same image{image_note}.
{ref_note}Judge the candidate on:
1. Accuracy: the objects, their attributes, the relations between them, the counts and any text in the image must agree with the ground truth. Every hallucinated object, attribute, relation, count or text is a serious error and lowers the score.
2. Completeness and detail: how much of the content of the ground truth the candidate covers, and how precisely.
Score from 1 to 10: 1 means wrong or nearly empty, 10 means as accurate and complete as the ground truth.

Ground truth:
{references}

Candidate caption:
{caption}

Output only the score, an integer from 1 to 10, and nothing else."""


def caption_score_prompt(caption: str, references: Sequence[str], with_image: bool = False) -> str:
    """The Figure 7 prompt for `caption` against one or more ground-truth captions."""
    refs = [r.strip() for r in references if r and r.strip()]
    if not refs:
        raise ValueError("references: at least one non-empty ground-truth caption is needed")
    if len(refs) == 1:
        block, note = refs[0], ""
    else:
        block = "\n\n".join(f"[{i}] {r}" for i, r in enumerate(refs, 1))
        note = (
            f"There are {len(refs)} ground-truth captions written independently; a detail "
            "found in any of them is supported."
        )
    # str.format substitutes once, so braces or placeholder names inside a caption or a
    # reference are left as they are.
    return CAPTION_SCORE_PROMPT.format(
        image_note=" (the image is attached)" if with_image else "",
        ref_note=note + "\n" if note else "",
        references=block,
        caption=caption,
    )


def caption_percent(grade: float) -> float:
    """A 1-10 caption grade on the suite's 0-100 scale: 10 * grade."""
    return 10.0 * grade


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


def score_caption(
    client: JudgeClient, caption: str, references: Sequence[str], image: bytes | None = None
) -> Judgement:
    """Figure 7: one 1-10 grade of `caption` against its ground-truth `references`
    (None when the reply holds no score in 1-10)."""
    prompt = caption_score_prompt(caption, references, with_image=image is not None)
    reply = client.chat(prompt, image)
    lo, hi = CAPTION_SCALE
    return Judgement(
        scores={"score": parse_score(reply, lo=lo, hi=hi)},
        reply=reply,
        prompt_version=CAPTION_PROMPT_VERSION,
    )


def format_conversation(turns: Sequence[dict[str, str]]) -> str:
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    return "\n".join(f"{names.get(t['role'], t['role'])}: {t['content']}" for t in turns)


def sft_score_prompt(conversations: Sequence[dict[str, str]]) -> str:
    """The Figure 10 prompt for one sample's conversation (the scoring job's request)."""
    prompt = SFT_SCORE_PROMPT.replace("{conversation}", format_conversation(conversations))
    return prompt.replace("{{", "{").replace("}}", "}")


def score_sft(
    client: JudgeClient, conversations: Sequence[dict[str, str]], image: bytes | None
) -> Judgement:
    """Figure 10: difficulty, complexity and image-text relevance (1-5 each)."""
    reply = client.chat(sft_score_prompt(conversations), image)
    return Judgement(scores=parse_scores(reply, SFT_FIELDS), reply=reply)
