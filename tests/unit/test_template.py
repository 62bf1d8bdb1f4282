"""Chat template: token layout, image expansion and label masking on the tiny tokenizer."""

from __future__ import annotations

import pytest

from sailvl.data.template import (
    IGNORE_INDEX,
    TemplateConfig,
    build_generation_prompt,
    caption_conversation,
    encode_conversation,
    encode_generation_prompt,
    render_conversation,
)
from sailvl.model.tokenizer import build_tiny_tokenizer, special_token_ids

TOK = build_tiny_tokenizer()
IDS = special_token_ids(TOK)
CTX = IDS["<IMG_CONTEXT>"]


def supervised_text(sample) -> str:
    return TOK.decode(
        [t for t, y in zip(sample.input_ids, sample.labels, strict=True) if y != IGNORE_INDEX]
    )


def test_single_image_layout_and_masking() -> None:
    cfg = TemplateConfig(tokens_per_tile=16, system_prompt="You are SAIL-VL.")
    conv = [
        {"role": "user", "content": "<image>\nWhat is here?"},
        {"role": "assistant", "content": "A red square."},
    ]
    s = encode_conversation(TOK, conv, [3], cfg)
    assert s.num_tiles == 3
    assert s.input_ids.count(CTX) == 48
    assert len(s.input_ids) == len(s.labels)
    # image run is contiguous and bracketed
    start = s.input_ids.index(IDS["<img>"])
    assert s.input_ids[start + 1 : start + 49] == [CTX] * 48
    assert s.input_ids[start + 49] == IDS["</img>"]
    # only the answer and its <|im_end|> carry labels, equal to the inputs there
    assert supervised_text(s) == "A red square.<|im_end|>"
    for t, y in zip(s.input_ids, s.labels, strict=True):
        assert y in (IGNORE_INDEX, t)
    assert s.num_supervised == len(TOK.encode("A red square.", add_special_tokens=False)) + 1
    # the last token (the newline after <|im_end|>) is not supervised
    assert s.labels[-1] == IGNORE_INDEX and s.labels[-2] == IDS["<|im_end|>"]
    assert TOK.decode(s.input_ids).startswith("<|im_start|>system\nYou are SAIL-VL.<|im_end|>\n")


def test_ids_equal_tokenising_the_rendered_string() -> None:
    cfg = TemplateConfig(tokens_per_tile=4)
    conv = [
        {"from": "human", "value": "Compare <image> and <image> please, 你好."},
        {"from": "gpt", "value": "Left is larger."},
        {"from": "human", "value": "Why?"},
        {"from": "gpt", "value": "Because é."},
    ]
    s = encode_conversation(TOK, conv, [2, 1], cfg)
    text = render_conversation(conv, [2, 1], cfg)
    assert TOK.encode(text, add_special_tokens=False) == s.input_ids
    assert s.input_ids.count(CTX) == (2 + 1) * 4
    assert supervised_text(s) == "Left is larger.<|im_end|>Because é.<|im_end|>"


def test_missing_placeholders_go_first_in_first_user_turn() -> None:
    cfg = TemplateConfig(tokens_per_tile=2)
    conv = [{"role": "user", "content": "Describe."}, {"role": "assistant", "content": "ok"}]
    text = render_conversation(conv, [1, 1], cfg)
    img = "<img>" + "<IMG_CONTEXT>" * 2 + "</img>"
    assert text.startswith(f"<|im_start|>user\n{img}\n{img}\nDescribe.<|im_end|>\n")
    no_image = encode_conversation(TOK, conv, [], cfg)
    assert CTX not in no_image.input_ids and no_image.num_tiles == 0


def test_generation_prompt_matches_training_prefix() -> None:
    cfg = TemplateConfig(tokens_per_tile=16, system_prompt="sys")
    prompt = build_generation_prompt("What colour?", [2], cfg)
    assert prompt.endswith("<|im_start|>assistant\n")
    train = encode_conversation(
        TOK,
        [{"role": "user", "content": "What colour?"}, {"role": "assistant", "content": "Blue."}],
        [2],
        cfg,
    )
    prompt_ids = TOK.encode(prompt, add_special_tokens=False)
    assert train.input_ids[: len(prompt_ids)] == prompt_ids
    assert all(y == IGNORE_INDEX for y in train.labels[: len(prompt_ids)])
    assert train.labels[len(prompt_ids)] != IGNORE_INDEX


def test_encoded_generation_prompt_equals_the_string_prompt() -> None:
    for system in (None, "sys"):
        cfg = TemplateConfig(tokens_per_tile=4, system_prompt=system)
        for question, tiles in [("Q?", [2]), ("a <image> b <image>", [1, 3]), ("text only", [])]:
            ids = encode_generation_prompt(TOK, question, tiles, cfg)
            text = build_generation_prompt(question, tiles, cfg)
            assert ids == TOK.encode(text, add_special_tokens=False)


def test_special_token_strings_in_content_stay_text() -> None:
    cfg = TemplateConfig(tokens_per_tile=4)
    conv = [
        {"role": "user", "content": "<image>\nfake <IMG_CONTEXT> and <|im_end|>"},
        {"role": "assistant", "content": "ends early?<|im_end|><|im_start|>user\n"},
    ]
    s = encode_conversation(TOK, conv, [1], cfg)
    assert s.input_ids.count(CTX) == 4  # only the real image's run
    assert s.input_ids.count(IDS["<|im_end|>"]) == 2  # one per turn
    assert s.input_ids.count(IDS["<|im_start|>"]) == 2
    assert TOK.decode(s.input_ids).count("<|im_end|>") == 4  # the literal ones as text
    assert supervised_text(s) == "ends early?<|im_end|><|im_start|>user\n<|im_end|>"
    prompt = encode_generation_prompt(TOK, "<IMG_CONTEXT>", [], cfg)
    assert CTX not in prompt


def test_caption_conversation_supervises_the_caption() -> None:
    s = encode_conversation(
        TOK, caption_conversation("A cat."), [1], TemplateConfig(tokens_per_tile=16)
    )
    assert supervised_text(s) == "A cat.<|im_end|>"


@pytest.mark.parametrize(
    ("conv", "tiles", "match"),
    [
        (
            [{"role": "user", "content": "<image><image>"}, {"role": "assistant", "content": "x"}],
            [1],
            "placeholders",
        ),
        ([{"role": "user", "content": "hi"}], [], "assistant"),
        (
            [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}],
            [],
            "bad turn",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "<image>"}],
            [1],
            "only allowed",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            [0],
            "tiles_per_image",
        ),
    ],
)
def test_bad_conversations_raise(conv, tiles, match) -> None:
    with pytest.raises(ValueError, match=match):
        encode_conversation(TOK, conv, tiles, TemplateConfig(tokens_per_tile=4))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="tokens_per_tile"):
        TemplateConfig(tokens_per_tile=0)


def test_literal_generation_prompt_keeps_image_text_and_puts_images_first() -> None:
    for system in (None, "sys"):
        cfg = TemplateConfig(tokens_per_tile=4, system_prompt=system)
        # Without placeholders, literal and placeholder parsing give the same ids.
        for question, tiles in [("Q?", [2]), ("two", [1, 3]), ("text only", [])]:
            assert encode_generation_prompt(
                TOK, question, tiles, cfg, literal=True
            ) == encode_generation_prompt(TOK, question, tiles, cfg)
    cfg = TemplateConfig(tokens_per_tile=4)
    question = "alt-text: <image> <image> logo"  # web text, not placeholders
    with pytest.raises(ValueError, match="placeholders"):
        encode_generation_prompt(TOK, question, [2], cfg)
    ids = encode_generation_prompt(TOK, question, [2], cfg, literal=True)
    assert ids.count(CTX) == 8  # one image of two tiles, nothing claimed by the text
    expected = build_generation_prompt("<image>\n", [2], cfg).replace(
        "\n<|im_end|>", "\n" + question + "<|im_end|>"
    )
    assert TOK.decode(ids) == expected
