"""Caption prompts: detail caption in English or Chinese, and the recaption variant.

The paper's data engine asks the captioner for a detailed description of the image and,
when a web alt-text exists and the job enables it, hands the alt-text over as a hint
("recaption"): the alt-text often names entities (places, products, people) that the
image alone does not reveal, but it is noisy, so the prompt tells the model to keep only
what the image confirms. Prompt sets are versioned: the version is written next to every
caption, so captions made with different wordings are never mixed up silently.

The text returned here carries no image placeholder: each backend puts the image where
its chat template wants it (`<image>` for InternVL / LMDeploy).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class PromptSet:
    """The four templates of one prompt version; `{alt_text}` is substituted."""

    detail_en: str
    detail_zh: str
    recaption_en: str
    recaption_zh: str


PROMPT_SETS: dict[str, PromptSet] = {
    "v1": PromptSet(
        detail_en=(
            "Describe this image in detail. Cover the main subjects, their attributes, "
            "actions and spatial relations, the background and setting, and transcribe any "
            "visible text exactly. Only describe what is visible."
        ),
        detail_zh=(
            "请详细描述这张图片。包括主要物体及其属性、动作和空间关系，背景与场景，"
            "并准确转写图中可见的文字。只描述图中可见的内容。"
        ),
        recaption_en=(
            "Here is the original alt-text of this image, which may be incomplete or "
            'inaccurate: "{alt_text}"\n'
            "Describe this image in detail. Cover the main subjects, their attributes, "
            "actions and spatial relations, the background and setting, and transcribe any "
            "visible text exactly. Use names from the alt-text only if the image is "
            "consistent with them; only describe what is visible."
        ),
        recaption_zh=(
            "这是这张图片原有的替代文本，可能不完整或不准确：“{alt_text}”\n"
            "请详细描述这张图片。包括主要物体及其属性、动作和空间关系，背景与场景，"
            "并准确转写图中可见的文字。仅当图片内容与替代文本一致时才使用其中的名称；"
            "只描述图中可见的内容。"
        ),
    ),
}


def resolve_lang(prompt_lang: str, sample_lang: str | None) -> str:
    """`auto` follows the sample's `lang` column (any zh* tag is Chinese), else English."""
    if prompt_lang != "auto":
        return prompt_lang
    lang = (sample_lang or "").strip().lower()
    return "zh" if lang.startswith("zh") or lang in ("cn", "chinese") else "en"


def clean_alt_text(alt_text: str | None, max_chars: int) -> str:
    """Collapse whitespace, cut to `max_chars` on a word boundary where one is near."""
    if not alt_text:
        return ""
    text = " ".join(str(alt_text).split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars // 2 else cut


def build_prompt(
    *,
    version: str,
    prompt_lang: str,
    sample_lang: str | None,
    alt_text: str | None,
    use_alt_text: bool,
    max_alt_text_chars: int = 512,
) -> tuple[str, str]:
    """Return (prompt text, kind) where kind is `detail` or `recaption`."""
    ps = PROMPT_SETS[version]
    lang = resolve_lang(prompt_lang, sample_lang)
    alt = clean_alt_text(alt_text, max_alt_text_chars) if use_alt_text else ""
    if alt:
        template = ps.recaption_zh if lang == "zh" else ps.recaption_en
        # str.replace, not format(): alt-text may contain braces.
        return template.replace("{alt_text}", alt), "recaption"
    return (ps.detail_zh if lang == "zh" else ps.detail_en), "detail"
