"""The paper's Table 1 caption statistics.

Definitions (per caption c, after tagging with `sailvl.quality.tagging`):

- words(c): the caption's tokens with punctuation removed (a token with no letter or
  digit), case-folded. English tokens come from the Pattern tokenizer (so "don't" is
  "do" + "n't"), Chinese tokens from jieba's segmentation (words, not characters).
- length(c) = |words(c)|. `avg_chars` (characters of the stripped caption) is
  reported next to it, since Chinese lengths are often quoted in characters.
- uniq_2gram(c), uniq_3gram(c): the number of *distinct* n-grams of consecutive
  entries of words(c) (n-grams run across sentence boundaries, punctuation having been
  removed). A caption of k words has at most k - n + 1.
- uniq_noun(c), uniq_verb(c), uniq_adj(c): the number of distinct case-folded words of
  c tagged noun (Penn NN*, jieba n*), verb (VB*, v*) or adjective (JJ*, a*). No
  lemmatising ("dog" and "dogs" are two nouns): WordNet is a download, and the paper's
  NLTK pipeline does not say it lemmatised.

"Per sample" means the mean over captions of these per-caption counts, which is how
Table 1 compares datasets of different sizes: every row is an average over the
sampled captions. The numbers of distinct 2-grams, 3-grams and nouns over the whole
sample (not per caption) are reported as `corpus_*` for reference.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sailvl.quality.tagging import ADJ, NOUN, PUNCT, VERB, detect_lang, tag

FIELDS = ("avg_length", "uniq_2gram", "uniq_3gram", "uniq_noun", "uniq_verb", "uniq_adj")
HEADERS = (
    "Avg. Length",
    "Unique 2-gram",
    "Unique 3-gram",
    "Unique Noun",
    "Unique Verb",
    "Unique Adj.",
)


@dataclass(kw_only=True)
class CaptionStats:
    """Table 1 row for a set of captions (means over captions, see module docstring)."""

    lang: str  # en | zh
    samples: int  # captions measured
    avg_length: float  # mean words per caption
    avg_chars: float  # mean characters per caption
    uniq_2gram: float  # mean distinct word 2-grams per caption
    uniq_3gram: float  # mean distinct word 3-grams per caption
    uniq_noun: float  # mean distinct nouns per caption
    uniq_verb: float  # mean distinct verbs per caption
    uniq_adj: float  # mean distinct adjectives per caption
    corpus_2gram: int  # distinct 2-grams over all captions
    corpus_3gram: int  # distinct 3-grams over all captions
    corpus_noun: int  # distinct nouns over all captions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def caption_counts(text: str, lang: str) -> dict[str, Any]:
    """Per-caption counts plus the sets behind them (for corpus totals)."""
    pairs = [(w.casefold(), c) for w, c in tag(text, lang) if c != PUNCT]
    words = [w for w, _ in pairs]
    by_class = {k: {w for w, c in pairs if c == k} for k in (NOUN, VERB, ADJ)}
    bi, tri = ngrams(words, 2), ngrams(words, 3)
    return {
        "length": len(words),
        "chars": len(text.strip()),
        "uniq_2gram": len(bi),
        "uniq_3gram": len(tri),
        "uniq_noun": len(by_class[NOUN]),
        "uniq_verb": len(by_class[VERB]),
        "uniq_adj": len(by_class[ADJ]),
        "_sets": (bi, tri, by_class[NOUN]),
    }


def compute_stats(texts: Iterable[str], lang: str) -> CaptionStats:
    """Table 1 statistics of `texts` (all in `lang`, en or zh); empty texts are skipped."""
    rows = [caption_counts(t, lang) for t in texts if t and t.strip()]
    n = len(rows)

    def mean(key: str) -> float:
        return round(sum(r[key] for r in rows) / n, 4) if n else 0.0

    corpus: list[set[Any]] = [set(), set(), set()]
    for r in rows:
        for acc, s in zip(corpus, r["_sets"], strict=True):
            acc |= s
    return CaptionStats(
        lang=lang,
        samples=n,
        avg_length=mean("length"),
        avg_chars=mean("chars"),
        uniq_2gram=mean("uniq_2gram"),
        uniq_3gram=mean("uniq_3gram"),
        uniq_noun=mean("uniq_noun"),
        uniq_verb=mean("uniq_verb"),
        uniq_adj=mean("uniq_adj"),
        corpus_2gram=len(corpus[0]),
        corpus_3gram=len(corpus[1]),
        corpus_noun=len(corpus[2]),
    )


def sample_captions(dataset_uri: str, sample: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to `sample` (caption, lang) pairs drawn uniformly from a dataset's shards.

    Shards are visited in a seeded random order until enough captions are collected,
    then a seeded uniform sample is taken, so a large dataset is not read whole. Rows
    with an empty caption or a `caption_status` other than ok (caption worker output)
    are skipped. `lang` is the row's `lang` column when it is en/zh, else detected."""
    import io

    import pyarrow.parquet as pq

    from sailvl.data.dataset import Dataset

    ds = Dataset.open(dataset_uri)
    rng = random.Random(seed)
    order = list(range(len(ds.shards)))
    rng.shuffle(order)
    pool: list[tuple[str, str]] = []
    for i in order:
        table = pq.read_table(io.BytesIO(ds.read_shard_bytes(i)))
        cols = table.column_names
        n = table.num_rows
        caps = table.column("caption").to_pylist() if "caption" in cols else [None] * n
        langs = table.column("lang").to_pylist() if "lang" in cols else [None] * n
        status = (
            table.column("caption_status").to_pylist() if "caption_status" in cols else ["ok"] * n
        )
        for cap, lg, st in zip(caps, langs, status, strict=True):
            if cap and cap.strip() and st == "ok":
                lang = lg if lg in ("en", "zh") else detect_lang(cap)
                pool.append((cap, lang))
        if len(pool) >= 4 * sample:
            break
    return pool if len(pool) <= sample else rng.sample(pool, sample)


def dataset_stats(
    dataset_uri: str, sample: int = 1000, lang: str = "auto", seed: int = 0
) -> dict[str, CaptionStats]:
    """Table 1 rows for a sample of a dataset: {lang: stats}, one per language present
    (`auto`) or only `en` / `zh`."""
    if lang not in ("auto", "en", "zh"):
        raise ValueError(f"lang: must be auto, en or zh, got {lang!r}")
    if sample < 1:
        raise ValueError("sample: must be >= 1")
    pairs = sample_captions(dataset_uri, sample, seed)
    langs = ("en", "zh") if lang == "auto" else (lang,)
    out = {}
    for lg in langs:
        texts = [c for c, l_ in pairs if l_ == lg]
        if texts or lang != "auto":
            out[lg] = compute_stats(texts, lg)
    return out


def format_rows(rows: dict[str, CaptionStats], name: str) -> str:
    """A Table-1-style text table: one row per language."""
    head = ["Dataset", "Lang", "Samples", *HEADERS]
    lines = [head]
    for lg, s in rows.items():
        lines.append([name, lg, str(s.samples), *(f"{getattr(s, f):.2f}" for f in FIELDS)])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines)


def stats_main(dataset_uri: str, sample: int = 1000, lang: str = "auto") -> int:
    """`sailvl stats DATASET`: print Table 1 rows for a sample of the dataset."""
    rows = dataset_stats(dataset_uri, sample, lang)
    print(format_rows(rows, dataset_uri.rstrip("/").rsplit("/", 1)[-1] or dataset_uri))
    return 0
