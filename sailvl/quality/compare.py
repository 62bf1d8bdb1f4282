"""Good / same / bad comparison of two caption sets on the same images (paper Table 8).

`sailvl stats compare A B --judge-url URL`: for every image captioned in both A and B
(joined by `id`), a judge model is shown the two captions and says which describes the
image better, or that they are equally good. The result is Table 8's G / S / B counts
(G: A's caption is better, B: B's is better, S: same) and the net win rate of A over B,
(G - B) / (G + S + B), in [-1, 1].

Position bias. LLM judges tend to prefer whichever answer comes first (or second). Each
pair is therefore judged twice, once as (A, B) and once as (B, A), and a pair counts G
only when both orders prefer A, B only when both prefer B, and S otherwise (a tie in
either order, or the two orders disagreeing). A judge that always picks the first
caption thus yields all S, not a spurious win. `disagree` counts the pairs whose two
orders picked opposite captions, a direct measure of the judge's position bias.

Bad judge output never crashes the run and never becomes a verdict: each judgement that
fails is counted by reason (`judge_error`: the request failed after retries;
`refusal`: the judge declined; `unparseable`: no verdict found), and a pair with a
failed judgement in either order is left out of G/S/B and counted in `unjudged`. Join
problems are counted too (`only_in_a`, `only_in_b`, `empty_caption`, `duplicate_id`).

Inputs: a dataset URI (`sailvl.data.dataset`, e.g. the output of two CaptionJobs over
the same input) or a JSON-lines file of `{"id": ..., "caption": ...}` objects. When the
rows carry images (datasets do), A's first image is attached to the request, unless
`--no-image`. Requests go through `sailvl.quality.judge.JudgeClient` (OpenAI-protocol
chat completions, retries with back-off), `--concurrency` at a time.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

PAIR_PROMPT_VERSION = "v1"

PAIR_PROMPT = """You are an expert judge of image captions.
Two captions describe the same image{image_note}. Decide which one describes it better.
A better caption is more accurate (objects, attributes, relations, counts and visible text
are right; hallucinated content is a serious error) and, at equal accuracy, more complete
and detailed.

Caption 1:
{first}

Caption 2:
{second}

Answer with exactly one of: 1 (caption 1 is better), 2 (caption 2 is better), same (they
are equally good). Output only the answer."""

FIRST, SECOND, SAME = "first", "second", "same"
_REFUSAL = re.compile(r"\b(i can ?not|i can't|i'm sorry|i am sorry|unable to)\b", re.I)
_BARE = re.compile(r"(?:caption\s*)?(1|2|same|tie|equal|equally good|both)", re.I)
_KEYED = re.compile(
    r"(?:answer|verdict|better|choice|winner)\s*(?:is|[:=：-])?\s*(?:caption\s*)?"
    r"(1|2|same|tie|equal)\b",
    re.I,
)
_NAMED = re.compile(r"\bcaption\s*([12])\s+is\s+(?:the\s+)?(?:better|best|preferred)\b", re.I)


def pair_prompt(first: str, second: str, with_image: bool = False) -> str:
    """The pairwise prompt with `first` shown as caption 1 and `second` as caption 2."""
    note = " (the image is attached)" if with_image else ""
    return PAIR_PROMPT.format(image_note=note, first=first, second=second)


def parse_verdict(reply: str) -> tuple[str | None, str | None]:
    """(FIRST | SECOND | SAME, None) or (None, failure reason) for one judge reply."""
    norm = re.sub(r"[*_`\"'.!()\[\]]+", "", unicodedata.normalize("NFKC", reply)).strip()
    word = _BARE.fullmatch(norm)
    hits = [word.group(1)] if word else [m.group(1) for m in _KEYED.finditer(norm)]
    hits = hits or [m.group(1) for m in _NAMED.finditer(norm)]
    if hits:
        token = hits[-1].casefold()
        return {"1": FIRST, "2": SECOND}.get(token, SAME), None
    return None, ("refusal" if _REFUSAL.search(norm) else "unparseable")


def combine(straight: str, swapped: str) -> str:
    """G, S or B from the verdict with A shown first and the one with B shown first."""
    if straight == FIRST and swapped == SECOND:
        return "G"
    if straight == SECOND and swapped == FIRST:
        return "B"
    return "S"


@dataclass(kw_only=True)
class Row:
    caption: str
    image: bytes | None = None


@dataclass(kw_only=True)
class Comparison:
    """Table 8 counts for A against B, and what could not be judged, by reason."""

    good: int = 0
    same: int = 0
    bad: int = 0
    disagree: int = 0  # pairs whose two orders picked opposite captions
    unjudged: int = 0  # pairs left out: a judgement failed in either order
    failures: Counter[str] = field(default_factory=Counter)  # per judgement / join row
    pairs: list[dict[str, Any]] = field(default_factory=list)  # per id, for audit

    @property
    def net_win_rate(self) -> float | None:
        """(G - B) / (G + S + B); None when no pair was judged."""
        total = self.good + self.same + self.bad
        return (self.good - self.bad) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "G": self.good,
            "S": self.same,
            "B": self.bad,
            "net_win_rate": self.net_win_rate,
            "disagree": self.disagree,
            "unjudged": self.unjudged,
            "failures": dict(sorted(self.failures.items())),
            "prompt_version": PAIR_PROMPT_VERSION,
            "pairs": self.pairs,
        }


def join(a: Mapping[str, Row], b: Mapping[str, Row], out: Comparison) -> list[tuple[str, Row, Row]]:
    """The ids captioned (non-empty) in both sets, sorted; the rest counted in `out`."""
    out.failures["only_in_a"] += len(a.keys() - b.keys())
    out.failures["only_in_b"] += len(b.keys() - a.keys())
    pairs = []
    for key in sorted(a.keys() & b.keys()):
        if a[key].caption.strip() and b[key].caption.strip():
            pairs.append((key, a[key], b[key]))
        else:
            out.failures["empty_caption"] += 1
    return pairs


Ask = Callable[[str, bytes | None], str]  # prompt, image -> reply; raises on failure


def compare(
    pairs: Sequence[tuple[str, Row, Row]],
    ask: Ask,
    *,
    concurrency: int = 8,
    with_image: bool = True,
    out: Comparison | None = None,
) -> Comparison:
    """Judge every pair in both orders, at most `concurrency` requests at a time."""
    out = out or Comparison()
    jobs = []
    for key, ra, rb in pairs:
        image = (ra.image or rb.image) if with_image else None
        has_image = image is not None
        jobs.append((key, pair_prompt(ra.caption, rb.caption, has_image), image))
        jobs.append((key, pair_prompt(rb.caption, ra.caption, has_image), image))

    def one(job: tuple[str, str, bytes | None]) -> tuple[str | None, str | None, str]:
        try:
            reply = ask(job[1], job[2])
        except Exception as err:  # noqa: BLE001 - any failed request is counted, never raised
            return None, "judge_error", f"{type(err).__name__}: {err}"
        verdict, reason = parse_verdict(reply)
        return verdict, reason, reply

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(one, jobs))
    for i, (key, _ra, _rb) in enumerate(pairs):
        (v1, r1, t1), (v2, r2, t2) = results[2 * i], results[2 * i + 1]
        for reason in (r1, r2):
            if reason:
                out.failures[reason] += 1
        record: dict[str, Any] = {"id": key, "replies": [t1, t2]}
        if v1 is None or v2 is None:
            out.unjudged += 1
            record["result"] = None
        else:
            result = combine(v1, v2)
            out.good += result == "G"
            out.bad += result == "B"
            out.same += result == "S"
            out.disagree += {v1, v2} == {FIRST} or {v1, v2} == {SECOND}
            record["result"] = result
        out.pairs.append(record)
    return out


def format_report(name_a: str, name_b: str, c: Comparison) -> str:
    rate = "n/a" if c.net_win_rate is None else f"{100 * c.net_win_rate:+.1f}%"
    lines = [
        f"{name_a} vs {name_b} (GSB, both orders)",
        f"  G {c.good}  S {c.same}  B {c.bad}  net win rate {rate}",
        f"  orders disagreed on {c.disagree} pair(s); unjudged {c.unjudged}",
    ]
    if +c.failures:
        lines.append(
            "  not counted: " + ", ".join(f"{k} {v}" for k, v in sorted(c.failures.items()) if v)
        )
    return "\n".join(lines)


def sample_pairs(
    pairs: list[tuple[str, Row, Row]], sample: int | None, seed: int
) -> list[tuple[str, Row, Row]]:
    """A seeded uniform sample of `sample` pairs (all when None or more than there are)."""
    if sample is None or sample >= len(pairs):
        return pairs
    return sorted(random.Random(seed).sample(pairs, sample), key=lambda p: p[0])


def load_rows(uri: str, out: Comparison, side: str) -> dict[str, Row]:
    """id -> Row from a JSON-lines file or a dataset; a repeated id keeps the first."""
    rows: dict[str, Row] = {}

    def add(key: Any, caption: Any, image: bytes | None) -> None:
        if str(key) in rows:
            out.failures["duplicate_id"] += 1
        else:
            rows[str(key)] = Row(caption=str(caption or ""), image=image)

    if uri.endswith((".jsonl", ".json")):
        with open(uri, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as err:
                    raise ValueError(f"{side}: {uri} line {n}: not JSON: {err}") from err
                if not isinstance(obj, dict) or "id" not in obj or "caption" not in obj:
                    raise ValueError(f"{side}: {uri} line {n}: need an object with id and caption")
                add(obj["id"], obj["caption"], None)
        return rows
    from sailvl.data.dataset import Dataset

    ds = Dataset.open(uri)
    for i in range(len(ds.shards)):
        for sample in ds.read_shard(i).rows:
            if sample is not None:
                images = sample.get("images") or []
                add(sample["id"], sample.get("caption"), images[0] if images else None)
    return rows


def parser() -> Any:
    import argparse

    from sailvl.runtime.openai_client import add_judge_arguments

    p = argparse.ArgumentParser(
        prog="sailvl stats compare", description="GSB comparison of two caption sets (Table 8)"
    )
    p.add_argument("a", help="caption set A: dataset URI or .jsonl of {id, caption}")
    p.add_argument("b", help="caption set B (same ids as A)")
    add_judge_arguments(p, concurrency=8, timeout=60.0)
    p.add_argument("--sample", type=int, default=None, help="judge a seeded random N pairs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-image", action="store_true", help="send the captions only")
    p.add_argument("--out", help="write the full result (with per-pair replies) as JSON")
    return p


def main(argv: Sequence[str]) -> int:
    """`sailvl stats compare`: 0 when pairs were judged, 1 when none could be, 2 on bad
    input (the message names the argument)."""
    import sys

    from sailvl.quality.judge import JudgeClient, JudgeConfig

    args = parser().parse_args(argv)
    out = Comparison()
    try:
        if args.concurrency < 1:
            raise ValueError(f"--concurrency: must be >= 1, got {args.concurrency}")
        if args.sample is not None and args.sample < 1:
            raise ValueError(f"--sample: must be >= 1, got {args.sample}")
        cfg = JudgeConfig(
            base_url=args.judge_url,
            model=args.model,
            retries=args.retries,
            timeout_s=args.timeout,
            max_tokens=32,  # the answer is one token; a long reply is not a verdict anyway
        )
        rows_a = load_rows(args.a, out, "A")
        rows_b = load_rows(args.b, out, "B")
    except (ValueError, OSError) as err:
        print(f"sailvl stats compare: {err}", file=sys.stderr)
        return 2
    pairs = sample_pairs(join(rows_a, rows_b, out), args.sample, args.seed)
    client = JudgeClient(cfg)
    compare(pairs, client.chat, concurrency=args.concurrency, with_image=not args.no_image, out=out)
    print(format_report(args.a, args.b, out))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"a": args.a, "b": args.b, **out.to_dict()}, fh, ensure_ascii=False, indent=1)
    return 0 if out.good + out.same + out.bad else 1
