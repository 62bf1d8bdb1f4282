"""InternVL meta files: a JSON object naming per-dataset annotation files.

    {"<name>": {"root": ".../images/", "annotation": ".../train.jsonl",
                "repeat_time": 1, "length": 12345, "data_augment": false}, ...}

Each entry is one unit; its rows are LLaVA rows (`llava.candidate`), image paths
relative to the entry's `root`. Relative `root` / `annotation` paths resolve against
the meta file's folder. Row ids get the dataset name as a prefix (`<name>/<id>`), as
InternVL datasets number their rows independently and would otherwise collide.

`repeat_time` is InternVL's sampling weight (a fraction subsamples, >1 repeats); the
import keeps every row exactly once and records each dataset's `repeat_time`,
declared `length` and imported row count in the manifest's `meta.import.sources`, so
the weight can be carried into a TrainStage's data `weight`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sailvl.data.importers import llava
from sailvl.data.importers.inputs import Meter, Unit, parent_of, split_object

NAME = "internvl"
SUFFIXES = (".json",)


def _resolve(path: str, base: str) -> str:
    if "://" in path or path.startswith("/"):
        return path
    return f"{base.rstrip('/')}/{path}"


def read_meta(uri: str) -> dict[str, Any]:
    store, key = split_object(uri)
    meta = json.loads(store.read_bytes(key))
    if not isinstance(meta, dict) or not meta:
        raise ValueError(f"{uri}: an InternVL meta file is a non-empty JSON object")
    for name, entry in meta.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("annotation"), str):
            raise ValueError(f"{uri}: {name}.annotation: must be a path")
    return meta


def plan(input_uri: str, image_root: str | None, options: dict[str, Any]) -> list[Unit]:
    base = parent_of(input_uri)
    units = []
    for i, (name, entry) in enumerate(read_meta(input_uri).items()):
        units.append(
            Unit(
                index=i,
                uri=_resolve(entry["annotation"], base),
                image_root=_resolve(entry.get("root") or image_root or base, base),
                source=name,
                id_prefix=f"{name}/",
                info={
                    "repeat_time": entry.get("repeat_time", 1),
                    "length": entry.get("length"),
                },
            )
        )
    return units


def rows(unit: Unit, meter: Meter) -> Iterator[Any]:
    return llava.rows(unit, meter)
