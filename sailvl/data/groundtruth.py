"""Ground-truth candidate collections: SFT data whose quality is known by construction.

The Experiment strategies (quickQuality, incremental, composition, checkpointScaling)
claim to tell good data from bad. To check that claim, and not just that they run, this
module writes candidate collections whose order of quality is fixed before any training:

- ``clean``: shape-scene VQA drawn by the synthetic benchmarks' own renderer
  (:data:`sailvl.eval.synthetic.STYLE`: one shape in one of four colours on light
  grey); each row asks "What colour is the shape?" and "Which shape is shown?";
- ``noisy-30`` / ``noisy-70``: the same generator (other seeds) with 30 % / 70 % of the
  answers replaced by a wrong answer of the same question (another colour, another
  shape), drawn per answer from the row's own RNG. The wrong answer is the same for a
  given true answer (a fixed derangement), so corrupted rows teach a consistent wrong
  mapping instead of averaging out: above 50 % the majority label is wrong;
- ``shuffled``: the mutation check. The clean collection with its answers shuffled
  across rows: the answers' frequencies are the clean ones but they no longer belong to
  their image. A method that cannot tell it from ``clean`` is not measuring quality;
- ``text-only``: unrelated rows without an image (arithmetic and word games);
- ``duplicate``: a byte-identical copy of the base collection (same seed, same ids);
- ``base-shapes``: clean rows that ask only "Which shape is shown?", the base of the
  incremental test: a collection without the colour skill, which a candidate then
  brings, right (``clean``) or mostly wrong (``noisy-70``). A model trained on it alone
  forgets how to answer the colour question (it answers with a shape);
- ``warmup``: clean rows of their own seed, to train the trials' starting checkpoint
  (the stand-in for the paper's pretrained model): the tiny model learns the prompts,
  how to spell the eight answers (its tokenizer is byte-level) and, partly, to read
  the scene, so that a candidate's short SFT subset moves the score up or down from
  there instead of spending its steps on the vocabulary.

The selection benchmark ``gt-shapes`` is drawn from the same family (same renderer,
questions and answer sets; another seed) in VLMEvalKit's TSV format and is scored with
ANLS, so a model can only score by having learnt what the clean rows teach.
``gt-colours`` is its colour questions alone (the same scenes and answers): the skill
the tiny model learns reliably in a few dozen steps. Whether a 32-step run answers the
shape question well varies by up to half its shape rows between runs on equally clean
data, so a test that asks "did this candidate bring the colour skill, right or
wrong?" scores it on ``gt-colours`` (the incremental test). Training
rows use the prompt the evaluator builds for it (:func:`sailvl.eval.prompts.build_prompt`),
as the demo's SFT rows do.

Every collection is a pure function of (kind, size, seed): row ``i`` draws from its own
``random.Random(f"{kind}:{seed}:{i}")`` (the ``shuffled`` permutation from the seed).
``python -m sailvl.data.groundtruth OUT`` (or the ``groundtruth`` local-setup profile of
``sailvl run``) writes the whole set under OUT.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARK = "gt-shapes"
COLOUR_BENCHMARK = "gt-colours"
SCORER = "anls"
QUESTIONS = {"colour": "What colour is the shape?", "shape": "Which shape is shown?"}
IMAGE_SIZE = 64  # one 64 px tile of the tiny model
CORRUPTIONS = {"clean": 0.0, "noisy-30": 0.3, "noisy-70": 0.7}


def answer_sets() -> dict[str, list[str]]:
    """The answers each question can have (the synthetic benchmarks' colours, shapes)."""
    from sailvl.eval.synthetic import SHAPES, STYLE

    return {"colour": list(STYLE.colors), "shape": list(SHAPES)}


def wrong_answer(question: str, answer: str) -> str:
    """The corrupted answer: the next one in the question's answer set (a derangement)."""
    options = answer_sets()[question]
    return options[(options.index(answer) + 1) % len(options)]


def scene(rng: random.Random, size: int = IMAGE_SIZE) -> tuple[str, dict[str, str]]:
    """One shape scene: (base64 PNG, {question kind: true answer})."""
    from sailvl.eval.synthetic import SHAPES, STYLE

    shape, colour = rng.choice(SHAPES), rng.choice(list(STYLE.colors))
    return STYLE.shapes([(shape, colour)], rng, size), {"colour": colour, "shape": shape}


def _prompt(question: str) -> str:
    from sailvl.eval.prompts import build_prompt

    return build_prompt(BENCHMARK, SCORER, {"question": question})


def task_rows(
    n: int,
    seed: int,
    corrupt: float = 0.0,
    *,
    name: str = "clean",
    kinds: tuple[str, ...] = tuple(QUESTIONS),
) -> list[dict]:
    """``n`` dataset rows of the task family asking the questions ``kinds`` (both by
    default, in a random order), each answer corrupted with probability ``corrupt``
    (see the module docstring)."""
    if not 0.0 <= corrupt <= 1.0:
        raise ValueError(f"corrupt: must be in [0, 1], got {corrupt}")
    if not kinds or set(kinds) - set(QUESTIONS):
        raise ValueError(f"kinds: must be a non-empty subset of {sorted(QUESTIONS)}")
    rows = []
    for i in range(n):
        rng = random.Random(f"task:{seed}:{i}")
        image, truth = scene(rng)
        turns: list[dict[str, str]] = []
        for k, kind in enumerate(rng.sample(sorted(kinds), len(kinds))):
            answer = truth[kind]
            if rng.random() < corrupt:
                answer = wrong_answer(kind, answer)
            turns.append(
                {
                    "role": "user",
                    "content": ("<image>\n" if k == 0 else "") + _prompt(QUESTIONS[kind]),
                }
            )
            turns.append({"role": "assistant", "content": answer})
        rows.append(_row(f"{name}-{seed}-{i:06d}", [base64.b64decode(image)], turns, name))
    return rows


def shuffle_answers(rows: list[dict], seed: int) -> list[dict]:
    """The rows with their answers permuted across rows, per question kind (the
    mutation of the ranking test): same answer frequencies, no link to the image."""
    rng = random.Random(f"shuffle:{seed}")
    slots = [(r, t) for r in range(len(rows)) for t in range(1, len(rows[r]["conversations"]), 2)]
    by_kind: dict[str, list[tuple[int, int]]] = {}
    for r, t in slots:
        question = rows[r]["conversations"][t - 1]["content"]
        kind = next(k for k, q in QUESTIONS.items() if q in question)
        by_kind.setdefault(kind, []).append((r, t))
    out = [{**row, "conversations": [dict(c) for c in row["conversations"]]} for row in rows]
    for places in by_kind.values():
        answers = [rows[r]["conversations"][t]["content"] for r, t in places]
        rng.shuffle(answers)
        for (r, t), answer in zip(places, answers, strict=True):
            out[r]["conversations"][t]["content"] = answer
    return out


def text_rows(n: int, seed: int, *, name: str = "text-only") -> list[dict]:
    """``n`` image-free rows unrelated to the task: sums and spelling."""
    from sailvl.data.synthetic import WORDS_EN

    rows = []
    for i in range(n):
        rng = random.Random(f"text:{seed}:{i}")
        if rng.random() < 0.5:
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            q, a_ = f"What is {a} plus {b}?", str(a + b)
        else:
            word = rng.choice(WORDS_EN)
            q, a_ = f"Spell the word {word!r} backwards.", word[::-1]
        turns = [{"role": "user", "content": q}, {"role": "assistant", "content": a_}]
        rows.append(_row(f"{name}-{seed}-{i:06d}", [], turns, name))
    return rows


def _row(id_: str, images: list[bytes], turns: list[dict[str, str]], source: str) -> dict:
    return {
        "id": id_,
        "images": images,
        "alt_text": "",
        "caption": "",
        "conversations": turns,
        "source": f"groundtruth/{source}",
        "lang": "en",
    }


def colour_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The colour questions of :func:`benchmark_rows`, renumbered (``gt-colours``).
    Each is its scene's first row, so it holds the image itself, not a reference."""
    out = []
    for row in rows:
        if row["category"] == "colour":
            if len(str(row["image"])) <= 64:
                raise ValueError(f"row {row['index']}: a colour row refers to another's image")
            out.append({**row, "index": len(out)})
    return out


def benchmark_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` VLMEvalKit rows of ``gt-shapes``: each scene asked both questions (the
    second row refers to the first's image, VLMEvalKit's image-reference convention)."""
    rows: list[dict[str, Any]] = []
    i = 0
    while len(rows) < n:
        rng = random.Random(f"bench:{seed}:{i}")
        image, truth = scene(rng)
        first = len(rows)
        for k, kind in enumerate(sorted(QUESTIONS)):
            if len(rows) == n:
                break
            cell = image if k == 0 else str(first)
            rows.append(
                {"index": len(rows), "image": cell, "question": QUESTIONS[kind],
                 "answer": truth[kind], "category": kind}
            )  # fmt: skip
        i += 1
    return rows


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How many rows each collection of :func:`write_groundtruth` gets."""

    base: int = 192
    """The base collection (composition's clean group) and ``base-shapes``
    (incremental's starting point)."""
    candidate: int = 512
    """Each candidate (clean, noisy-30, noisy-70, shuffled, text-only)."""
    anneal: int = 256
    """The fixed annealing set of checkpointScaling (clean, its own seed)."""
    warmup: int = 1024
    """The starting checkpoint's training rows (clean, its own seed)."""
    bench: int = 96
    """Rows of the gt-shapes benchmark (half colour, half shape questions)."""

    def __post_init__(self) -> None:
        for name in ("base", "candidate", "anneal", "warmup", "bench"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1")


SEEDS = {
    "base": 11, "clean": 21, "noisy-30": 31, "noisy-70": 41, "text-only": 51, "anneal": 61,
    "warmup": 81, "base-shapes": 91,
}  # fmt: skip
BENCH_SEED = 71


def collections(sizes: Sizes, seed: int = 0) -> Iterator[tuple[str, list[dict]]]:
    """(name, rows) of every collection; ``seed`` offsets all of them (calibration)."""
    s = {k: v + 1000 * seed for k, v in SEEDS.items()}
    base = task_rows(sizes.base, s["base"], name="base")
    yield "base", base
    yield "duplicate", base
    yield (
        "base-shapes",
        task_rows(sizes.base, s["base-shapes"], name="base-shapes", kinds=("shape",)),
    )
    for name, p in CORRUPTIONS.items():
        yield name, task_rows(sizes.candidate, s[name], p, name=name)
    clean = task_rows(sizes.candidate, s["clean"], name="shuffled")
    yield "shuffled", shuffle_answers(clean, s["clean"])
    yield "text-only", text_rows(sizes.candidate, s["text-only"])
    yield "anneal", task_rows(sizes.anneal, s["anneal"], name="anneal")
    yield "warmup", task_rows(sizes.warmup, s["warmup"], name="warmup")


def write_groundtruth(root: str, sizes: Sizes | None = None, seed: int = 0) -> dict[str, str]:
    """Write every collection as a dataset under ``<root>/data/<name>`` and the
    benchmarks as ``<root>/bench/gt-shapes.tsv`` and ``gt-colours.tsv``; return
    name -> URI."""
    from sailvl.data.dataset import DatasetWriter
    from sailvl.eval.synthetic import COLUMNS
    from sailvl.eval.tsv import write_tsv
    from sailvl.storage import open_store

    sizes = sizes or Sizes()
    root = root.rstrip("/")
    out = {}
    for name, rows in collections(sizes, seed):
        uri = f"{root}/data/{name}"
        meta = {"generator": "sailvl.data.groundtruth", "collection": name, "seed": seed}
        writer = DatasetWriter(uri, meta=meta)
        for row in rows:
            writer.write(row)
        writer.close()
        out[name] = uri
    rows = benchmark_rows(sizes.bench, BENCH_SEED + 1000 * seed)
    bench = open_store(f"{root}/bench")
    for name, table in ((BENCHMARK, rows), (COLOUR_BENCHMARK, colour_rows(rows))):
        bench.write_bytes(f"{name}.tsv", write_tsv(table, COLUMNS))
        out[name] = f"{root}/bench/{name}.tsv"
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m sailvl.data.groundtruth OUT``: write the collections under OUT."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m sailvl.data.groundtruth", description=__doc__)
    p.add_argument("out", help="folder or URI (file://, s3://, hdfs://)")
    p.add_argument("--seed", type=int, default=0, help="offsets every collection's seed")
    for name, value in vars(Sizes()).items():
        p.add_argument(f"--{name}", type=int, default=value, help=f"rows (default {value})")
    args = p.parse_args(argv)
    sizes = Sizes(**{k: getattr(args, k) for k in vars(Sizes())})
    out = args.out if "://" in args.out else f"file://{Path(args.out).resolve()}"
    for name, uri in write_groundtruth(out, sizes, args.seed).items():
        print(f"{name}: {uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
