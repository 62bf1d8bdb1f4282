"""LLaVA JSON: a list of `{id, image | images, conversations: [{from, value}]}`.

Input: one `.json` file (a JSON array, streamed element by element by
`jsonstream.iter_json_array`, never loaded whole) or `.jsonl` file, or a folder of
them (one unit per file). Image paths are relative to `--image-root` (default: the
folder holding the annotation file); absolute paths and file:// or s3:// URIs are
read as they are. A row without an id gets `<file stem>:<position>`, stable across
reruns. The same row parser reads InternVL annotation rows (`sailvl.data.importers
.internvl`), whose layout is LLaVA's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sailvl.data.importers.inputs import Meter, Unit, list_inputs, open_stream, parent_of
from sailvl.data.importers.jsonstream import CountingReader, iter_json_array, iter_json_lines
from sailvl.data.importers.records import BAD_ROW, Candidate, Reject

NAME = "llava"
SUFFIXES = (".json", ".jsonl")


def stem(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def plan(input_uri: str, image_root: str | None, options: dict[str, Any]) -> list[Unit]:
    files = list_inputs(input_uri, SUFFIXES)
    return [
        Unit(index=i, uri=f, image_root=image_root or parent_of(f), source=stem(f))
        for i, f in enumerate(files)
    ]


def candidate(row: Any, pos: int, unit: Unit) -> Candidate:
    """A LLaVA / InternVL annotation row as a `Candidate` (type problems -> bad_row)."""
    rid = row.get("id") if isinstance(row, dict) else None
    fallback = str(pos) if unit.id_prefix else f"{unit.source}:{pos}"
    sid = unit.id_prefix + (str(rid) if rid not in (None, "") else fallback)
    if not isinstance(row, dict):
        return Candidate(id=sid, reject=Reject(BAD_ROW, f"row {pos} is not an object"))
    if "__bad_line__" in row:
        return Candidate(id=sid, reject=Reject(BAD_ROW, row["__bad_line__"]))
    refs = row.get("images", row.get("image"))
    if refs is None:
        refs = []
    elif isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
        return Candidate(id=sid, reject=Reject(BAD_ROW, f"image field {refs!r}"))
    turns = row.get("conversations")
    if turns is not None and not isinstance(turns, list):
        return Candidate(id=sid, reject=Reject(BAD_ROW, "conversations is not a list"))
    return Candidate(id=sid, images=list(refs), turns=turns or [])


def rows(unit: Unit, meter: Meter) -> Iterator[Candidate]:
    with open_stream(unit.uri) as raw:
        reader = CountingReader(raw, meter)
        items = iter_json_lines(reader) if unit.uri.endswith(".jsonl") else iter_json_array(reader)
        for pos, row in enumerate(items):
            yield candidate(row, pos, unit)
