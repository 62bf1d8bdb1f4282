"""The local tiny tokenizer, special tokens, and embedding growth."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from sailvl.model.build import build_model, fit_embeddings
from sailvl.model.tokenizer import (
    IMAGE_SPECIALS,
    build_tiny_tokenizer,
    ensure_special_tokens,
    special_token_ids,
)

TEXT = "<|im_start|>user\n<img><IMG_CONTEXT></img>\nHello, 世界 — naïve?<|im_end|>\n"


def test_tiny_tokenizer_is_deterministic_and_lossless() -> None:
    a, b = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    ids = special_token_ids(a)
    assert ids == {
        "<|endoftext|>": 256,
        "<|im_start|>": 257,
        "<|im_end|>": 258,
        "<img>": 259,
        "</img>": 260,
        "<IMG_CONTEXT>": 261,
    }
    enc = a.encode(TEXT, add_special_tokens=False)
    assert a.decode(enc) == TEXT
    assert enc.count(261) == 1 and enc[0] == 257
    assert all(t < 256 for t in a.encode("plain ascii and 中文", add_special_tokens=False))
    assert (a.eos_token, a.pad_token) == ("<|im_end|>", "<|endoftext|>")


def test_tiny_tokenizer_saves_and_loads_as_a_hf_tokenizer(tmp_path: Path) -> None:
    tok = build_tiny_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.encode(TEXT, add_special_tokens=False) == tok.encode(
        TEXT, add_special_tokens=False
    )
    assert special_token_ids(loaded) == special_token_ids(tok)
    chat = loaded.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_missing_image_specials_are_added_and_embeddings_grow() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {chr(ord("a") + i): i for i in range(26)} | {"[UNK]": 26}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    assert ensure_special_tokens(tok) == 6
    assert ensure_special_tokens(tok) == 0  # idempotent
    ids = special_token_ids(tok)
    assert all(ids[t] >= 27 for t in IMAGE_SPECIALS)
    model = build_model("tiny")
    model.resize_token_embeddings(30)  # pretend the checkpoint's vocab is too small
    assert fit_embeddings(model, tok)
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows >= len(tok) and rows % 64 == 0
    assert model.config.image_token_id == ids["<IMG_CONTEXT>"]
    assert not fit_embeddings(model, tok)
