"""The paper's Table 1 caption statistics.

Per caption c, after tagging with `sailvl.quality.tagging`:

- words(c): the caption's tokens with punctuation removed (a token with no letter or
  digit), case-folded. English tokens are NLTK's (`nltk.word_tokenize` rules: "don't"
  is "do" + "n't"), tagged with Penn Treebank tags; Chinese tokens come from jieba's
  segmentation (words, not characters) and jieba POS. See `sailvl.quality.tagging`.
- 2-grams(c), 3-grams(c): n-grams of consecutive entries of words(c) (they run across
  sentence boundaries, punctuation having been removed).
- nouns(c), verbs(c), adjs(c): case-folded words tagged noun (Penn NN*, jieba n*), verb
  (VB*, v*) or adjective (JJ*, a*). No lemmatising ("dog" and "dogs" are two nouns):
  WordNet is a download, and the paper does not say it lemmatised.

Table 1 ("unique items per sample"), over a draw D of N captions:

- avg_length = mean over D of |words(c)|; `avg_chars` (characters of the stripped
  caption) is reported next to it, since Chinese lengths are often quoted in characters.
- uniq_X = |union over D of X(c)| / N for X in 2-grams, 3-grams, nouns, verbs, adjs:
  the distinct items of the *whole draw* divided by the number of samples. That is the
  only reading that fits the paper's figures (87.9 words but 14.3 unique 2-grams per
  sample, while one 88-word caption alone holds ~80 distinct 2-grams). It measures the
  diversity of a dataset: a dataset made of every caption twice has half the values.
  The numerators are reported as `distinct_X`.
- per_caption_X = mean over D of |X(c)|: distinct items within each caption, a
  different quantity (not comparable with Table 1), kept for reference.

Because uniq_X depends on N, Table 1 rows are only comparable at the same draw size:
the paper uses 10,000 random samples, the default here (`DEFAULT_SAMPLE`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sailvl.quality.tagging import ADJ, NOUN, PUNCT, VERB, detect_lang, tag

DEFAULT_SAMPLE = 10_000  # Table 1's draw size
DEFAULT_SEED = 0
KINDS = ("2gram", "3gram", "noun", "verb", "adj")
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
    """Table 1 row for a draw of captions in one language (see module docstring)."""

    lang: str  # en | zh
    samples: int  # captions measured (N)
    avg_length: float  # mean words per caption
    avg_chars: float  # mean characters per caption
    uniq_2gram: float  # Table 1: distinct 2-grams over the draw / N
    uniq_3gram: float  # Table 1: distinct 3-grams over the draw / N
    uniq_noun: float  # Table 1: distinct nouns over the draw / N
    uniq_verb: float  # Table 1: distinct verbs over the draw / N
    uniq_adj: float  # Table 1: distinct adjectives over the draw / N
    distinct_2gram: int  # distinct 2-grams over the draw
    distinct_3gram: int
    distinct_noun: int
    distinct_verb: int
    distinct_adj: int
    per_caption_2gram: float  # mean distinct 2-grams within one caption (not Table 1)
    per_caption_3gram: float
    per_caption_noun: float
    per_caption_verb: float
    per_caption_adj: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def caption_items(text: str, lang: str) -> tuple[int, dict[str, set[Any]]]:
    """One caption tagged once: its word count and {kind: item set} for every kind."""
    pairs = [(w.casefold(), c) for w, c in tag(text, lang) if c != PUNCT]
    words = [w for w, _ in pairs]
    items: dict[str, set[Any]] = {"2gram": ngrams(words, 2), "3gram": ngrams(words, 3)}
    for kind, cls in (("noun", NOUN), ("verb", VERB), ("adj", ADJ)):
        items[kind] = {w for w, c in pairs if c == cls}
    return len(words), items


def caption_counts(text: str, lang: str) -> dict[str, int]:
    """Per-caption counts: length (words), chars, and uniq_<kind> within the caption."""
    n_words, items = caption_items(text, lang)
    out = {"length": n_words, "chars": len(text.strip())}
    out.update({f"uniq_{k}": len(v) for k, v in items.items()})
    return out


def compute_stats(texts: Iterable[str], lang: str) -> CaptionStats:
    """Table 1 statistics of `texts` (all in `lang`, en or zh); empty texts are skipped."""
    kept = [t for t in texts if t and t.strip()]
    n = len(kept)
    union: dict[str, set[Any]] = {k: set() for k in KINDS}
    per: dict[str, int] = {k: 0 for k in KINDS}
    length = chars = 0
    for t in kept:
        n_words, items = caption_items(t, lang)
        length += n_words
        chars += len(t.strip())
        for k in KINDS:
            union[k] |= items[k]
            per[k] += len(items[k])

    def ratio(x: int) -> float:
        return round(x / n, 4) if n else 0.0

    fields: dict[str, Any] = {"avg_length": ratio(length), "avg_chars": ratio(chars)}
    for k in KINDS:
        fields[f"uniq_{k}"] = ratio(len(union[k]))
        fields[f"distinct_{k}"] = len(union[k])
        fields[f"per_caption_{k}"] = ratio(per[k])
    return CaptionStats(lang=lang, samples=n, **fields)


def sample_captions(
    dataset_uri: str, sample: int, seed: int = DEFAULT_SEED
) -> list[tuple[str, str]]:
    """Up to `sample` (caption, lang) pairs drawn at random (seeded) from a dataset.

    Shards are visited in a seeded random order until 4x `sample` captions are pooled,
    then a seeded uniform sample of the pool is taken, so a large dataset is not read
    whole (the draw is uniform over the visited shards, which are a random subset). Rows
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
    dataset_uri: str,
    sample: int = DEFAULT_SAMPLE,
    lang: str = "auto",
    seed: int = DEFAULT_SEED,
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


def stats_main(
    dataset_uri: str, sample: int = DEFAULT_SAMPLE, lang: str = "auto", seed: int = DEFAULT_SEED
) -> int:
    """`sailvl stats DATASET`: print Table 1 rows for a seeded draw of the dataset."""
    rows = dataset_stats(dataset_uri, sample, lang, seed)
    print(format_rows(rows, dataset_uri.rstrip("/").rsplit("/", 1)[-1] or dataset_uri))
    return 0
