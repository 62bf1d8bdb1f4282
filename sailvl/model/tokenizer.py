"""Tokenizers: a deterministic local one for `tiny`, and the special tokens SAIL-VL adds.

The tiny tokenizer is byte-level BPE with no merges: every UTF-8 byte is one token
(ids 0..255, in GPT-2's byte-to-unicode alphabet so the `tokenizers` ByteLevel
pre-tokenizer and decoder round-trip any text), followed by the special tokens. It is
built from code, needs no download and is identical on every machine, and it saves and
loads like any Hugging Face tokenizer (`PreTrainedTokenizerFast`, `AutoTokenizer`).

Real checkpoints (2b / 8b) bring Qwen2.5's tokenizer; `ensure_special_tokens` adds the
InternVL image tokens if the LLM checkpoint lacks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ENDOFTEXT = "<|endoftext|>"  # Qwen2 pad token
IM_START = "<|im_start|>"  # ChatML turn start
IM_END = "<|im_end|>"  # ChatML turn end; the eos of chat generation
IMG_START = "<img>"  # opens an image's run of context tokens
IMG_END = "</img>"  # closes it
IMG_CONTEXT = "<IMG_CONTEXT>"  # one per visual token; the model scatters image features here

CHAT_SPECIALS = (ENDOFTEXT, IM_START, IM_END)
IMAGE_SPECIALS = (IMG_START, IMG_END, IMG_CONTEXT)

# Jinja ChatML template saved with the tokenizer, so `apply_chat_template` works for text.
# Images are expanded by sailvl.data.template, which knows the tile counts.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what ByteLevel emits)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def build_tiny_tokenizer(model_max_length: int = 8192) -> PreTrainedTokenizerBase:
    """A byte-level tokenizer with the ChatML and image specials (ids 256..261)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_map = _bytes_to_unicode()
    vocab = {byte_map[b]: b for b in range(256)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([*CHAT_SPECIALS, *IMAGE_SPECIALS])  # fixed ids 256..261
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tok.add_special_tokens({"additional_special_tokens": [IM_START, *IMAGE_SPECIALS]})
    if len(tok) != 256 + len(CHAT_SPECIALS) + len(IMAGE_SPECIALS):  # ids must stay fixed
        raise RuntimeError(f"tiny tokenizer has {len(tok)} tokens, expected 262")
    tok.chat_template = CHATML_TEMPLATE
    return tok


def ensure_special_tokens(tokenizer: Any) -> int:
    """Add any missing ChatML / image special tokens; return how many were added.

    The caller must resize the model's embeddings if the tokenizer then outgrows them
    (`sailvl.model.build.fit_embeddings`).
    """
    vocab = tokenizer.get_vocab()
    missing = [t for t in (*CHAT_SPECIALS, *IMAGE_SPECIALS) if t not in vocab]
    if not missing:
        return 0
    existing = list(getattr(tokenizer, "additional_special_tokens", []) or [])
    return int(tokenizer.add_special_tokens({"additional_special_tokens": existing + missing}))


def special_token_ids(tokenizer: Any) -> dict[str, int]:
    """Ids of the six special tokens; KeyError naming any the tokenizer lacks."""
    vocab = tokenizer.get_vocab()
    out = {}
    for tok in (*CHAT_SPECIALS, *IMAGE_SPECIALS):
        if tok not in vocab:
            raise KeyError(f"tokenizer lacks special token {tok!r}; call ensure_special_tokens")
        out[tok] = vocab[tok]
    return out
