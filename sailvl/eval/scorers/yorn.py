"""Yes/no benchmarks: MME, POPE, HallusionBench and plain yes/no accuracy (VLMEvalKit).

Extraction (``yorn_extract``): lower-case, VQA punctuation rule, split on whitespace;
"yes" without "no" is ``Yes``, "no" without "yes" is ``No``, anything else ``Unknown``.
Unknown rows go to the judge when one is configured (up to five replies, extracted the
same way). A row is right when the extracted word *equals* the ``answer`` cell (``Yes``
or ``No``, case-sensitive as in VLMEvalKit).

- MME: per category, acc (% of questions right) + acc+ (% of images whose first two
  questions are both right; images are grouped by ``image_path``). ``perception`` sums
  the 10 perception categories, ``reasoning`` (cognition) the 4 cognition ones; the sums
  count only the categories present (a full MME has all 14).
- POPE: a ``category`` cell may list several categories separated by commas; the row
  counts once per category, *in the overall numbers too* (VLMEvalKit explodes the
  frame before scoring). ``Overall`` is F1 with "Yes" positive; acc, precision, recall.
- HallusionBench: the ``index`` is ``<a>_<b>_<c>_<set>_<figure>_<question>``; aAcc is
  per-question accuracy, fAcc the share of (l2-category, set, figure) groups all right,
  qAcc the share of (l2-category, set, question) groups all right.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from .base import FAIL_MSG, JudgeLike, Record, Scored, mean, text
from .normalize import process_punctuation
from .prompts_judge import yorn_match_prompt

JUDGE_RETRIES = 5
MME_PERCEPTION = [
    "OCR",
    "artwork",
    "celebrity",
    "color",
    "count",
    "existence",
    "landmark",
    "position",
    "posters",
    "scene",
]
MME_COGNITION = (
    "code_reasoning",
    "commonsense_reasoning",
    "numerical_calculation",
    "text_translation",
)


def yorn_extract(output: str) -> str:
    words = process_punctuation(output.lower()).split()
    if "yes" in words and "no" not in words:
        return "Yes"
    if "yes" not in words and "no" in words:
        return "No"
    return "Unknown"


def _extract_all(records: Sequence[Record], judge: JudgeLike | None, out: Scored) -> list[bool]:
    """Extract every row, ask the judge about Unknowns, return per-row correctness."""
    hits = []
    for r in records:
        pred = text(r.get("prediction"))
        ans = yorn_extract(pred)
        if ans == "Unknown" and judge is not None:
            prompt = yorn_match_prompt(text(r.get("question")), pred)
            for attempt in range(JUDGE_RETRIES):
                reply = judge.generate(prompt, temperature=0.5 * attempt)
                if FAIL_MSG in reply:
                    continue
                ans = yorn_extract(reply)
                if ans != "Unknown":
                    break
            else:
                out.count("judge_failed")
        r_hit = text(r.get("answer")) == ans
        hits.append(r_hit)
        out.samples.append({"index": r.get("index"), "hit": float(r_hit), "extracted": ans})
    return hits


def yesno(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """Plain accuracy, overall then per category and l2-category (``default_rating``)."""
    out = Scored(score=None)
    hits = [float(h) for h in _extract_all(records, judge, out)]
    if not records:
        return out
    out.metrics["Overall"] = mean(hits) * 100
    for group in ("category", "l2-category"):
        if any(group in r for r in records):
            for c in sorted({text(r.get(group)) for r in records if r.get(group) is not None}):
                sub = [h for r, h in zip(records, hits, strict=True) if text(r.get(group)) == c]
                out.metrics[c] = mean(sub) * 100
    out.score = out.metrics["Overall"]
    return out


def mme(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """MME: acc + acc+ per category; perception and reasoning (cognition) sums."""
    out = Scored(score=None)
    hits = _extract_all(records, judge, out)
    by_cat: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r, h in zip(records, hits, strict=True):
        image = (
            text(r.get("image_path")) if r.get("image_path") is not None else text(r.get("image"))
        )
        by_cat[text(r.get("category"))][image].append(h)
    scores: dict[str, float] = {}
    for cat, images in by_cat.items():
        acc = mean([float(h) for hs in images.values() for h in hs]) * 100
        if any(len(hs) < 2 for hs in images.values()):
            out.count("mme_unpaired_images", sum(len(hs) < 2 for hs in images.values()))
        plus = mean([float(all(hs[:2])) for hs in images.values()]) * 100
        scores[cat] = acc + plus
    perception = [scores[c] for c in MME_PERCEPTION if c in scores]
    cognition = [scores[c] for c in MME_COGNITION if c in scores]
    out.metrics = {"perception": sum(perception), "reasoning": sum(cognition), **scores}
    missing = [c for c in (*MME_PERCEPTION, *MME_COGNITION) if c not in scores]
    out.metrics["missing_categories"] = missing
    if records:
        out.score = out.metrics["perception"] + out.metrics["reasoning"]
    return out


def _f1(truth: Sequence[bool], pred: Sequence[bool]) -> tuple[float, float, float]:
    tp = sum(t and p for t, p in zip(truth, pred, strict=True))
    fp = sum((not t) and p for t, p in zip(truth, pred, strict=True))
    fn = sum(t and (not p) for t, p in zip(truth, pred, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def pope(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """POPE: F1 ("Yes" positive), accuracy, precision, recall; overall and per category."""
    out = Scored(score=None)
    hits = _extract_all(records, judge, out)
    rows = []  # (category or None, truth, pred, hit) after splitting "a,b" categories
    for r, h, s in zip(records, hits, out.samples, strict=True):
        cats = text(r.get("category")).split(",") if r.get("category") is not None else [None]
        for c in cats:
            rows.append((c, text(r.get("answer")) == "Yes", s["extracted"] == "Yes", h))

    def block(sel: list[tuple[str | None, bool, bool, bool]]) -> dict[str, float]:
        f1, p, rc = _f1([x[1] for x in sel], [x[2] for x in sel])
        acc = mean([float(x[3]) for x in sel]) * 100
        return {"Overall": f1 * 100, "acc": acc, "precision": p * 100, "recall": rc * 100}

    if not rows:
        return out
    out.metrics["Overall"] = block(rows)
    for c in sorted({x[0] for x in rows if x[0] is not None}):
        out.metrics[c] = block([x for x in rows if x[0] == c])
    out.score = out.metrics["Overall"]["Overall"]
    return out


def hallusion(records: Sequence[Record], judge: JudgeLike | None = None) -> Scored:
    """HallusionBench aAcc / fAcc / qAcc, overall and per category / l2-category."""
    out = Scored(score=None)
    hits = _extract_all(records, judge, out)
    keyed = []
    for r, h in zip(records, hits, strict=True):
        parts = text(r.get("index")).split("_")
        if len(parts) < 6:
            out.count("bad_index")
            continue
        keyed.append((r, h, parts[3], parts[4], parts[5]))

    def block(sel: list[tuple[Record, bool, str, str, str]]) -> dict[str, float]:
        fig: dict[str, list[bool]] = defaultdict(list)
        que: dict[str, list[bool]] = defaultdict(list)
        for r, h, set_id, figure_id, question_id in sel:
            l2 = text(r.get("l2-category"))
            fig[f"{l2}_{set_id}_{figure_id}"].append(h)
            que[f"{l2}_{set_id}_{question_id}"].append(h)
        return {
            "aAcc": mean([float(x[1]) for x in sel]) * 100,
            "fAcc": mean([float(all(v)) for v in fig.values()]) * 100,
            "qAcc": mean([float(all(v)) for v in que.values()]) * 100,
        }

    if not keyed:
        return out
    out.metrics["Overall"] = block(keyed)
    for group in ("category", "l2-category"):
        for c in sorted({text(x[0].get(group)) for x in keyed if group in x[0]}):
            out.metrics[f"{group}:{c}"] = block([x for x in keyed if text(x[0].get(group)) == c])
    o = out.metrics["Overall"]
    # Headline as in the VLMEvalKit leaderboard: the mean of the three accuracies.
    out.score = (o["aAcc"] + o["fAcc"] + o["qAcc"]) / 3
    return out
