"""Offline word segmentation and part-of-speech tagging for English and Chinese.

English: tokenised as `nltk.word_tokenize` does: sentences first (NLTK's Punkt model
when its data is installed, else a rule: split after . ! ? followed by space and a
capital, digit or quote), then NLTK's Treebank word tokenizer (`NLTKWordTokenizer`,
rules only, no data), so "isn't" is "is" + "n't" and "man's" is "man" + "'s". The
tokens are tagged with Penn Treebank tags, the tagset NLTK's tagger uses, by TextBlob's
Pattern lexicon tagger (offline; told not to re-tokenise). Pattern's own tokenizer is
not used: it splits "isn't" into "is", "n", "'", "t". NLTK's perceptron tagger needs
its data package; `tag_en(..., tagger="nltk")` uses it only when that is installed.

Chinese: `jieba.posseg` (dictionary shipped in the wheel) segments and tags with the
ICTCLAS-style flags: n* nouns (n, nr, ns, nt, nz, ng, ...), v* verbs (v, vd, vn, vg),
a* adjectives (a, ad, an, ag); x / w are punctuation.

Both return a list of (word, coarse) pairs where coarse is NOUN, VERB, ADJ, OTHER or
PUNCT, so the statistics code is language-neutral.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

NOUN, VERB, ADJ, OTHER, PUNCT = "NOUN", "VERB", "ADJ", "OTHER", "PUNCT"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _is_punct(word: str) -> bool:
    """True when the token has no letter or digit (punctuation, symbols, spaces)."""
    return not any(unicodedata.category(ch)[0] in "LN" for ch in word)


def penn_coarse(tag: str) -> str:
    """Penn Treebank tag -> coarse class: NN* nouns, VB* verbs, JJ* adjectives (MD, a
    modal, is not counted as a verb, as in NLTK-based caption statistics)."""
    if tag.startswith("NN"):
        return NOUN
    if tag.startswith("VB"):
        return VERB
    if tag.startswith("JJ"):
        return ADJ
    return OTHER


def jieba_coarse(flag: str) -> str:
    if flag in ("x", "w") or flag.startswith("w"):
        return PUNCT
    head = flag[:1]
    return {"n": NOUN, "v": VERB, "a": ADJ}.get(head, OTHER)


_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@functools.cache
def _word_tokenizer() -> Any:
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


@functools.cache
def _punkt_available() -> bool:
    try:
        import nltk

        nltk.data.find("tokenizers/punkt_tab")
    except (ImportError, LookupError):
        return False
    return True


def _sentences(text: str) -> list[str]:
    if _punkt_available():
        import nltk

        return list(nltk.sent_tokenize(text))
    return [s for s in _SENT_END.split(text) if s.strip()]


def tokenize_en(text: str) -> list[str]:
    """NLTK-compatible English tokens (see module docstring)."""
    tok = _word_tokenizer()
    return [w for sent in _sentences(text) for w in tok.tokenize(sent)]


@functools.cache
def _jieba_posseg() -> Any:
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def nltk_tagger_available() -> bool:
    try:
        import nltk

        nltk.data.find("taggers/averaged_perceptron_tagger_eng")
        nltk.data.find("tokenizers/punkt_tab")
    except (ImportError, LookupError):
        return False
    return True


def tag_en(text: str, tagger: str = "pattern") -> list[tuple[str, str]]:
    """English (word, coarse) pairs; words keep their case (callers fold it)."""
    if tagger == "nltk":
        if not nltk_tagger_available():
            raise RuntimeError("tagger: NLTK tagger data is not installed (no download here)")
        import nltk

        pairs = nltk.pos_tag(nltk.word_tokenize(text))
    elif tagger == "pattern":
        from textblob.en import tag as pattern_tag

        tokens = tokenize_en(text)
        pairs = pattern_tag(" ".join(tokens), tokenize=False) if tokens else []
    else:
        raise ValueError(f"tagger: unknown English tagger {tagger!r}")
    return [(w, PUNCT if _is_punct(w) else penn_coarse(t)) for w, t in pairs]


def tag_zh(text: str) -> list[tuple[str, str]]:
    """Chinese (word, coarse) pairs from jieba.posseg."""
    pairs = _jieba_posseg().lcut(text)
    out = []
    for p in pairs:
        if not p.word.strip():
            continue
        coarse = jieba_coarse(p.flag)
        out.append((p.word, PUNCT if _is_punct(p.word) else coarse))
    return out


def detect_lang(text: str) -> str:
    """`zh` when CJK characters make up at least 30% of the letters, else `en`."""
    letters = [ch for ch in text if unicodedata.category(ch)[0] == "L"]
    if not letters:
        return "en"
    cjk = sum(1 for ch in letters if _CJK.match(ch))
    return "zh" if cjk / len(letters) >= 0.3 else "en"


def tag(text: str, lang: str) -> list[tuple[str, str]]:
    if lang == "zh":
        return tag_zh(text)
    if lang == "en":
        return tag_en(text)
    raise ValueError(f"lang: must be en or zh, got {lang!r}")
