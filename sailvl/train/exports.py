"""Intermediate model exports: loadable model folders kept at an interval while a stage
trains (TrainStage ``checkpoint.exportEveryTokens`` / ``exportEverySteps``), for
checkpoint-scaling studies.

Layout under the stage's output URI, next to the resume checkpoints:

    export/tokens-<mark>/    Hugging Face folder (weights, config, tokenizer, processor
    export/step-<n>/         config; its _COMMITTED marker last), loadable like final/
    export/<name>.json       {"name", "step", "tokens", "samples", "uri"}, written after
                             the folder is committed: an export exists when its JSON does

Names are known before training: ``tokens-<mark>`` for each multiple ``mark`` of
exportEveryTokens (written after the first step whose cumulative tokens reach it; the
JSON has the tokens actually seen), ``step-<n>`` for each multiple of exportEverySteps.
So a controller can name the exports of a stage from its spec alone, without listing
storage. A step that passes several token marks writes each of them (same weights).

Why not the step checkpoints: those are DeepSpeed units (sharded optimizer state, no
config or tokenizer), retained only ``keep`` deep for resuming. An export is written
from the live engine by the same consolidated save as ``final/``
(:func:`sailvl.train.checkpoint.save_model`; under ZeRO-3 the parameters are gathered
first), so it costs one model's weights, not three, and is never deleted. After a group
restart the loop resumes at the newest step checkpoint and re-exports any mark after
it: the folder is rewritten in full and its JSON written again, so nothing half-written
is ever listed. (To turn an old step checkpoint into a folder after the fact, use
``sailvl export``, :mod:`sailvl.model.export`.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sailvl.storage import join, open_store

FOLDER = "export"


@dataclass(frozen=True, kw_only=True)
class Export:
    """One kept model: its name, where it is and how far training had got."""

    name: str
    step: int
    tokens: int
    samples: int
    uri: str


def due(kind: str, interval: int, step: int, tokens_before: int, tokens_after: int) -> list[str]:
    """Names of the exports the step that just finished is due to write (pure): ``step``
    took the token count from ``tokens_before`` to ``tokens_after``."""
    if interval < 1:
        raise ValueError(f"interval: must be >= 1, got {interval}")
    if kind == "steps":
        return [f"step-{step}"] if step % interval == 0 else []
    if kind == "tokens":
        first = tokens_before // interval + 1
        return [f"tokens-{k * interval}" for k in range(first, tokens_after // interval + 1)]
    raise ValueError(f"kind: {kind!r} not in tokens|steps")


def export_uri(output: str, name: str) -> str:
    """Where export ``name`` (``tokens-<mark>`` or ``step-<n>``) of a stage goes."""
    return join(output, FOLDER, name)


def write_export(
    engine: Any, tokenizer: Any, output: str, name: str, *, step: int, tokens: int,
    samples: int, zero_stage: int, rank: int,
) -> Export:  # fmt: skip
    """Save the engine's current weights as ``export/<name>/`` (a collective under
    ZeRO-3: every rank calls it), then its JSON record (rank 0)."""
    from sailvl.train.checkpoint import save_model

    uri = export_uri(output, name)
    save_model(engine, tokenizer, uri, zero_stage=zero_stage, rank=rank)
    record = Export(name=name, step=step, tokens=tokens, samples=samples, uri=uri)
    if rank == 0:
        data = json.dumps(asdict(record), indent=1).encode()
        open_store(output).write_bytes(join(FOLDER, f"{name}.json"), data)
    return record


def list_exports(output: str) -> list[Export]:
    """The stage's exports so far (only those whose record is written), by step."""
    store = open_store(output)
    found = []
    for key in store.list(f"{FOLDER}/"):
        if key.count("/") != 1 or not key.endswith(".json"):
            continue
        raw = json.loads(store.read_bytes(key))
        found.append(Export(**{k: raw[k] for k in ("name", "step", "tokens", "samples", "uri")}))
    return sorted(found, key=lambda e: (e.step, int(e.name.rsplit("-", 1)[-1])))
