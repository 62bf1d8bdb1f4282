"""Post-filter of generated captions: abnormal length and duplicates, counted by reason.

Mechanism. Captions of one shard are checked in input order. A caption is rejected with
the first reason that applies:

- `empty_caption`: nothing left after stripping whitespace;
- `too_short` / `too_long`: outside [min_chars, max_chars] characters or
  [min_words, max_words] words (a word is a whitespace-separated token, and every CJK
  character counts as one word, so Chinese captions are measured fairly);
- `duplicate`: `exact` mode compares a normalised form (case-folded, punctuation and
  whitespace removed, NFKC); `near` mode also rejects a caption whose shingle set has a
  Jaccard similarity >= `near_threshold` with an earlier kept caption. Shingles are word
  3-grams (character 4-grams for text with CJK). Candidates come from MinHash
  locality-sensitive hashing (16 bands x 4 rows) and are confirmed with the exact
  Jaccard, so the cost stays linear in the shard size instead of quadratic.

The first caption of a duplicate group is kept. Dedup state is per shard on purpose: a
shard's output then depends only on that shard, so a retried or rerun shard produces the
same rows whatever other shards the pod processed before.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict

from sailvl.caption.config import FilterConfig

OK = "ok"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_MERSENNE = (1 << 61) - 1
_BANDS, _ROWS = 16, 4


def count_words(text: str) -> int:
    """Whitespace words, with every CJK character counted as its own word."""
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text).split()
    return cjk + len(rest)


def normalise(text: str) -> str:
    """Case-folded NFKC text without punctuation or whitespace (the exact-dup key)."""
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def shingles(text: str) -> set[str]:
    """Word 3-grams, or character 4-grams when the text contains CJK characters."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    if _CJK.search(norm):
        chars = _NON_WORD.sub("", norm)
        return {chars[i : i + 4] for i in range(max(1, len(chars) - 3))}
    words = _NON_WORD.sub(" ", norm).split()
    if len(words) < 3:
        return {" ".join(words)}
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def _hash64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")


# Fixed (a, b) pairs for h(x) = (a*x + b) mod p: deterministic across processes.
_PERMS = [
    (_hash64(f"a{i}") % (_MERSENNE - 1) + 1, _hash64(f"b{i}") % _MERSENNE)
    for i in range(_BANDS * _ROWS)
]


def minhash(sh: set[str]) -> list[int]:
    hashes = [_hash64(s) for s in sh]
    return [min((a * h + b) % _MERSENNE for h in hashes) for a, b in _PERMS]


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class PostFilter:
    """Checks the captions of one shard in order; `counts` tallies reasons (incl. ok)."""

    def __init__(self, cfg: FilterConfig) -> None:
        self.cfg = cfg
        self.counts: Counter[str] = Counter()
        self._seen: set[str] = set()
        self._kept: list[set[str]] = []
        self._buckets: dict[tuple[int, int], list[int]] = defaultdict(list)

    def check(self, caption: str) -> str:
        """Return `ok` or the rejection reason, and remember kept captions for dedup."""
        reason = self._reason(caption.strip())
        self.counts[reason] += 1
        return reason

    def _reason(self, text: str) -> str:
        cfg = self.cfg
        if not text:
            return "empty_caption"
        words = count_words(text)
        if len(text) < cfg.min_chars or words < cfg.min_words:
            return "too_short"
        if len(text) > cfg.max_chars or (cfg.max_words and words > cfg.max_words):
            return "too_long"
        if cfg.dedup == "none":
            return OK
        key = normalise(text)
        if key in self._seen:
            return "duplicate"
        if cfg.dedup == "near" and self._near_duplicate(text):
            return "duplicate"
        self._seen.add(key)
        return OK

    def _near_duplicate(self, text: str) -> bool:
        sh = shingles(text)
        sig = minhash(sh)
        bands = [(b, hash(tuple(sig[b * _ROWS : (b + 1) * _ROWS]))) for b in range(_BANDS)]
        candidates = {i for band in bands for i in self._buckets.get(band, ())}
        if any(jaccard(sh, self._kept[i]) >= self.cfg.near_threshold for i in candidates):
            return True
        idx = len(self._kept)
        self._kept.append(sh)
        for band in bands:
            self._buckets[band].append(idx)
        return False
