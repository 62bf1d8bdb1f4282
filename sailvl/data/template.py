"""The Qwen2.5 / ChatML chat template with InternVL image tokens, and label masking.

A sample with images and a conversation becomes

    <|im_start|>system\\n{system}<|im_end|>\\n                (only if a system prompt)
    <|im_start|>user\\n<img><IMG_CONTEXT>*k</img>\\n{question}<|im_end|>\\n
    <|im_start|>assistant\\n{answer}<|im_end|>\\n
    ...

where k = tokens_per_tile * (tiles of that image). Each `<image>` placeholder in a user
turn is replaced by the next image's token run; images without a placeholder are put at
the start of the first user turn, one `<image>\\n` each (InternVL's convention).

Labels follow InternVL's `preprocess_internvl2_5`: -100 on the system and user turns and
on the assistant prefix `<|im_start|>assistant\\n`; the assistant's content and its
`<|im_end|>` are supervised; the `\\n` after `<|im_end|>` is not. Labels are aligned with
input_ids (the model shifts them).

Each turn is tokenised piece by piece (text spans between special tokens), and the
special tokens are inserted by id; text never turns into a special token, even if it
spells one. Special tokens split text in every HF tokenizer, so for ordinary text the
ids equal those of tokenising the whole rendered string at once (a test checks this).
`encode_generation_prompt` builds inference prompts the same way, so generation sees
exactly the layout training saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sailvl.model.tokenizer import IM_END, IM_START, IMG_CONTEXT, IMG_END, IMG_START

IGNORE_INDEX = -100  # label value the loss skips
IMAGE_PLACEHOLDER = "<image>"  # where an image goes in a user turn
DEFAULT_CAPTION_PROMPT = "Describe this image in detail."

_ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
}


@dataclass(frozen=True, kw_only=True)
class TemplateConfig:
    """How conversations become token ids."""

    tokens_per_tile: int = 256  # <IMG_CONTEXT> per tile: the model preset's tokens_per_tile
    system_prompt: str | None = None  # system turn text; None or "" means no system turn

    def __post_init__(self) -> None:
        if self.tokens_per_tile <= 0:
            raise ValueError(f"tokens_per_tile: must be positive, got {self.tokens_per_tile}")


@dataclass
class EncodedSample:
    """Model inputs of one sample (lists, not tensors: the collator builds tensors)."""

    input_ids: list[int]
    labels: list[int]  # aligned with input_ids; IGNORE_INDEX where no loss
    tiles_per_image: list[int] = field(default_factory=list)

    @property
    def num_tiles(self) -> int:
        """Tiles of all images: rows of pixel_values this sample contributes."""
        return sum(self.tiles_per_image)

    @property
    def num_supervised(self) -> int:
        """Tokens with a label (the weight of this sample in token-weighted loss)."""
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def normalize_conversation(conversations: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, content) pairs from role/content or from/value dicts; roles normalised."""
    out = []
    for i, turn in enumerate(conversations):
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if role not in _ROLES or not isinstance(content, str):
            raise ValueError(f"conversations[{i}]: bad turn {dict(turn)!r}")
        out.append((_ROLES[role], content))
    if not any(r == "assistant" for r, _ in out):
        raise ValueError("conversations: no assistant turn to supervise")
    return out


def caption_conversation(
    caption: str, prompt: str = DEFAULT_CAPTION_PROMPT
) -> list[dict[str, str]]:
    """A one-round conversation that trains captioning (pretraining samples)."""
    return [
        {"role": "user", "content": f"{IMAGE_PLACEHOLDER}\n{prompt}"},
        {"role": "assistant", "content": caption},
    ]


def image_tokens(num_tiles: int, tokens_per_tile: int) -> str:
    """The token string one image becomes."""
    return IMG_START + IMG_CONTEXT * (num_tiles * tokens_per_tile) + IMG_END


def place_images(turns: list[tuple[str, str]], num_images: int) -> list[tuple[str, str]]:
    """Put missing `<image>` placeholders at the start of the first user turn."""
    found = sum(c.count(IMAGE_PLACEHOLDER) for r, c in turns if r == "user")
    misplaced = sum(c.count(IMAGE_PLACEHOLDER) for r, c in turns if r != "user")
    if misplaced:
        raise ValueError("conversations: <image> placeholders are only allowed in user turns")
    if found > num_images:
        raise ValueError(f"conversations: {found} <image> placeholders but {num_images} images")
    if found == num_images:
        return turns
    first_user = next((i for i, (r, _) in enumerate(turns) if r == "user"), None)
    if first_user is None:
        raise ValueError("conversations: images given but no user turn")
    turns = list(turns)
    prefix = f"{IMAGE_PLACEHOLDER}\n" * (num_images - found)
    turns[first_user] = ("user", prefix + turns[first_user][1])
    return turns


def _text_ids(tokenizer: Any, text: str) -> list[int]:
    """Ids of plain text. Literal special-token strings in it stay text
    (`split_special_tokens`): a caption containing "<|im_end|>" or "<IMG_CONTEXT>" can
    neither end a turn early nor claim an image feature slot."""
    if not text:
        return []
    return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True))


def _encode_body(
    tokenizer: Any, text: str, ids: dict[str, int], tiles: list[int], cfg: TemplateConfig
) -> list[int]:
    """Ids of a turn body: text spans tokenised, each `<image>` replaced by its run."""
    out: list[int] = []
    parts = text.split(IMAGE_PLACEHOLDER)
    for k, part in enumerate(parts):
        out.extend(_text_ids(tokenizer, part))
        if k < len(parts) - 1:
            out.extend(_image_run(ids, tiles.pop(0), cfg))
    return out


def _image_run(ids: dict[str, int], num_tiles: int, cfg: TemplateConfig) -> list[int]:
    """`<img>`, one `<IMG_CONTEXT>` per visual token of the image's tiles, `</img>`."""
    return [ids[IMG_START], *([ids[IMG_CONTEXT]] * (num_tiles * cfg.tokens_per_tile)), ids[IMG_END]]


def _special_ids(tokenizer: Any) -> dict[str, int]:
    vocab = tokenizer.get_vocab()
    missing = [t for t in (IM_START, IM_END, IMG_START, IMG_END, IMG_CONTEXT) if t not in vocab]
    if missing:
        raise ValueError(f"tokenizer: lacks special tokens {missing} (ensure_special_tokens)")
    return {t: vocab[t] for t in (IM_START, IM_END, IMG_START, IMG_END, IMG_CONTEXT)}


def encode_conversation(
    tokenizer: Any,
    conversations: Iterable[Mapping[str, Any]],
    tiles_per_image: Sequence[int],
    config: TemplateConfig,
) -> EncodedSample:
    """Token ids and masked labels of a conversation whose images have these tile counts."""
    if any(t <= 0 for t in tiles_per_image):
        raise ValueError(
            f"tiles_per_image: every image needs >= 1 tile, got {list(tiles_per_image)}"
        )
    ids = _special_ids(tokenizer)
    turns = _prepare_turns(conversations, len(tiles_per_image), config)
    newline = tokenizer.encode("\n", add_special_tokens=False)
    tiles = list(tiles_per_image)
    input_ids: list[int] = []
    labels: list[int] = []
    for role, content in turns:
        prefix = [ids[IM_START], *tokenizer.encode(f"{role}\n", add_special_tokens=False)]
        body = _encode_body(tokenizer, content, ids, tiles, config)
        turn = [*prefix, *body, ids[IM_END], *newline]
        input_ids.extend(turn)
        if role == "assistant":
            labels.extend([IGNORE_INDEX] * len(prefix) + body + [ids[IM_END]])
            labels.extend([IGNORE_INDEX] * len(newline))
        else:
            labels.extend([IGNORE_INDEX] * len(turn))
    return EncodedSample(input_ids=input_ids, labels=labels, tiles_per_image=list(tiles_per_image))


def encode_generation_prompt(
    tokenizer: Any,
    question: str,
    tiles_per_image: Sequence[int],
    config: TemplateConfig,
    *,
    literal: bool = False,
) -> list[int]:
    """Ids of `build_generation_prompt`, built like training ids (specials by id).

    `literal`: `question` is plain text (for example a prompt quoting web alt-text), so
    an `<image>` in it stays text instead of being taken for a placeholder; the images
    go first, one run and a newline each, the layout `place_images` gives a question
    without placeholders (and the same ids for such a question).
    """
    if any(t <= 0 for t in tiles_per_image):
        raise ValueError(
            f"tiles_per_image: every image needs >= 1 tile, got {list(tiles_per_image)}"
        )
    ids = _special_ids(tokenizer)
    turns = [("user", question)]
    if not literal:
        turns = place_images(turns, len(tiles_per_image))
    if config.system_prompt:
        turns = [("system", config.system_prompt), *turns]
    newline = tokenizer.encode("\n", add_special_tokens=False)
    tiles = list(tiles_per_image)
    out: list[int] = []
    for role, content in [*turns, ("assistant", None)]:
        out.extend([ids[IM_START], *tokenizer.encode(f"{role}\n", add_special_tokens=False)])
        if content is None:
            continue
        if literal and role == "user":
            out.extend(_images_then_text(tokenizer, content, ids, tiles, config))
        else:
            out.extend(_encode_body(tokenizer, content, ids, tiles, config))
        out.extend([ids[IM_END], *newline])
    return out


def _images_then_text(
    tokenizer: Any, text: str, ids: dict[str, int], tiles: list[int], cfg: TemplateConfig
) -> list[int]:
    """Ids of `<image>\\n` per image followed by `text`, without parsing `text`.

    The spans between image runs are tokenised exactly as `_encode_body` would split
    that string ("", "\\n", ..., "\\n" + text), so the ids match the placeholder path.
    """
    out: list[int] = []
    for k, n in enumerate(tiles):
        out.extend(_text_ids(tokenizer, "\n" if k else ""))
        out.extend(_image_run(ids, n, cfg))
    out.extend(_text_ids(tokenizer, ("\n" if tiles else "") + text))
    return out


def _prepare_turns(
    conversations: Iterable[Mapping[str, Any]], num_images: int, config: TemplateConfig
) -> list[tuple[str, str]]:
    """Normalised turns with image placeholders placed and the system turn added."""
    turns = place_images(normalize_conversation(conversations), num_images)
    if config.system_prompt and not any(r == "system" for r, _ in turns):
        turns = [("system", config.system_prompt), *turns]
    return turns


def _expand_images(
    turns: list[tuple[str, str]], tiles_per_image: Sequence[int], config: TemplateConfig
) -> list[tuple[str, str]]:
    """Replace `<image>` placeholders by token strings, images consumed in turn order."""
    cursor = 0
    out = []
    for role, content in turns:
        parts = content.split(IMAGE_PLACEHOLDER)
        text = parts[0]
        for part in parts[1:]:
            text += image_tokens(tiles_per_image[cursor], config.tokens_per_tile) + part
            cursor += 1
        out.append((role, text))
    return out


def render_conversation(
    conversations: Iterable[Mapping[str, Any]],
    tiles_per_image: Sequence[int],
    config: TemplateConfig,
) -> str:
    """The full template as a string (what `encode_conversation` tokenises)."""
    turns = _prepare_turns(conversations, len(tiles_per_image), config)
    return "".join(
        f"{IM_START}{role}\n{content}{IM_END}\n"
        for role, content in _expand_images(turns, tiles_per_image, config)
    )


def build_generation_prompt(
    question: str, tiles_per_image: Sequence[int], config: TemplateConfig
) -> str:
    """A single-turn prompt ending in `<|im_start|>assistant\\n`, images expanded.

    Without `<image>` in `question`, the images go first, one `<image>\\n` each.
    """
    turns = place_images([("user", question)], len(tiles_per_image))
    if config.system_prompt:
        turns = [("system", config.system_prompt), *turns]
    body = "".join(
        f"{IM_START}{role}\n{content}{IM_END}\n"
        for role, content in _expand_images(turns, tiles_per_image, config)
    )
    return f"{body}{IM_START}assistant\n"
