"""Hugging Face datasets Parquet, read with pyarrow directly (no hub, no `datasets`).

The layout `datasets` writes: image columns are `{bytes, path}` structs (`image`), or
lists of them (`images`); conversations are `messages` (`[{role, content}]`, content a
string or HF content parts `[{type: image}, {type: text, text}]`) or `conversations`
(`[{from, value}]`) or `texts` (`[{user, assistant}]` rounds, as in HuggingFaceM4's
The Cauldron). Optional columns: `id`, `caption`, `alt_text`, `lang`; without
an image column, a `url` column (img2dataset's input layout) names each row's image. An image
struct whose `bytes` is null is read from its `path` relative to `--image-root`
(default: the Parquet file's folder). A row without an `id` gets
`<file stem>:<row number>`.

Memory: the file is read in record batches (`iter_batches`) of `BATCH` rows, so only a
batch and the current part are in memory; a non-seekable input (S3) is spooled to a
local temporary file first (`inputs.seekable_copy`). `table_rows` is shared with the
caption worker, which reads image Parquet directly (`input.format: parquet`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sailvl.data.importers.inputs import Meter, Unit, list_inputs, parent_of, seekable_copy
from sailvl.data.importers.llava import stem
from sailvl.data.importers.records import BAD_ROW, Candidate, Reject

NAME = "hfparquet"
SUFFIXES = (".parquet",)
BATCH = 64
IMAGE_COLUMNS = ("images", "image")
TURN_COLUMNS = ("messages", "conversations", "texts")


def plan(input_uri: str, image_root: str | None, options: dict[str, Any]) -> list[Unit]:
    files = list_inputs(input_uri, SUFFIXES)
    return [
        Unit(index=i, uri=f, image_root=image_root or parent_of(f), source=stem(f))
        for i, f in enumerate(files)
    ]


def image_refs(value: Any) -> list[bytes | str]:
    """An image cell (struct, list of structs, raw bytes, path, or null) as refs."""
    if value is None:
        return []
    if isinstance(value, list):
        return [r for v in value for r in image_refs(v)]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return [bytes(value["bytes"])]
        if value.get("path"):
            return [str(value["path"])]
    raise Reject(BAD_ROW, f"image cell {type(value).__name__} with neither bytes nor path")


def row_candidate(row: dict[str, Any], pos: int, source: str) -> Candidate:
    sid = str(row["id"]) if row.get("id") not in (None, "") else f"{source}:{pos}"
    image_col = next((c for c in IMAGE_COLUMNS if c in row), None)
    turn_col = next((c for c in TURN_COLUMNS if c in row), None)
    try:
        images = image_refs(row[image_col]) if image_col else []
        if not image_col and row.get("url"):  # img2dataset's input layout: a URL per row
            images = [str(row["url"])]
    except Reject as rej:
        return Candidate(id=sid, reject=rej)
    caption = row.get("caption") or ""
    turns = (row.get(turn_col) or []) if turn_col else None
    if turn_col == "texts" and turns:
        turns = _rounds(turns)
    return Candidate(
        id=sid,
        images=images,
        turns=turns,
        alt_text=row.get("alt_text") or "",
        caption=caption if isinstance(caption, str) else "",
        lang=row.get("lang") or "",
    )


def _rounds(texts: list[Any]) -> list[Any]:
    """`[{user, assistant}]` rounds as turns (anything else is left for the checks)."""
    turns: list[Any] = []
    for r in texts:
        if not isinstance(r, dict) or "user" not in r or "assistant" not in r:
            return texts
        turns += [{"role": "user", "content": r["user"]},
                  {"role": "assistant", "content": r["assistant"]}]  # fmt: skip
    return turns


def table_rows(pf: Any, source: str, meter: Meter | None = None) -> Iterator[Candidate]:
    """Candidates of an open `pyarrow.parquet.ParquetFile`, batch by batch."""
    pos = 0
    for batch in pf.iter_batches(batch_size=BATCH):
        if meter is not None:
            meter.bytes += batch.nbytes
        for row in batch.to_pylist():
            yield row_candidate(row, pos, source)
            pos += 1


def rows(unit: Unit, meter: Meter) -> Iterator[Candidate]:
    import pyarrow.parquet as pq

    with seekable_copy(unit.uri) as f:
        yield from table_rows(pq.ParquetFile(f), unit.source, meter)
