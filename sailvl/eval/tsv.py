"""VLMEvalKit-format benchmark TSVs, read over any storage URI.

Columns: ``index`` (required, unique), ``image`` (base64; a value of at most 64
characters is instead the ``index`` of the row holding the image, and a Python list
literal holds several images), ``image_path``, ``question``, ``answer``, options
``A``..``Z``, ``hint``, ``category``, ``l2-category``, ``split`` and any others.

Cells are kept as strings. Cells pandas would read as NaN (``""``, ``NA``, ``None``,
``nan``, ``null`` ... VLMEvalKit loads TSVs with ``pd.read_csv``) become ``None``, so an
option cell reading "None" is absent here exactly as it is in VLMEvalKit.

Bad input never raises past :func:`load_benchmark`: malformed rows (wrong field count,
no index, duplicate index), rows whose image is missing, undecodable, or refers to a
row that does not exist are dropped and counted in ``Benchmark.errors``.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# pandas' default NA strings (pandas.read_csv na_values).
NA_VALUES = frozenset(
    [
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
) | {""}
REF_MAX_LEN = 64  # VLMEvalKit: an image cell this short is another row's index


class BadRow(ValueError):
    """A row that cannot be used; ``kind`` is the error counter it goes to."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(kw_only=True)
class Benchmark:
    """The usable rows of one TSV and the count of rows that were not usable."""

    records: list[dict[str, Any]]
    """Rows in file order; ``image`` holds the *resolved* base64 payload(s)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Dropped rows by reason: malformed_row, missing_index, duplicate_index,
    missing_image, missing_reference, bad_image."""
    total_rows: int = 0
    """Data rows in the file, usable or not."""


def read_uri_bytes(uri: str) -> bytes:
    """Bytes of the object at ``uri`` via ``sailvl.storage`` (plain files without it)."""
    try:
        from sailvl.storage import open_store
    except ImportError:  # storage not installed: local files only
        path = uri.removeprefix("file://")
        with open(path, "rb") as f:
            return f.read()
    parent, _, name = uri.rstrip("/").rpartition("/")
    if not parent or parent.endswith(":/"):  # "x.tsv" or "s3://x.tsv"
        raise ValueError(f"uri: {uri!r} names no object inside a folder or bucket")
    return open_store(parent).read_bytes(name)


def parse_tsv(data: bytes | str) -> tuple[list[dict[str, Any]], Counter[str], int]:
    """(rows as dicts, malformed-row count, data-row count) of TSV text."""
    csv.field_size_limit(sys.maxsize)
    textdata = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    reader = csv.reader(io.StringIO(textdata, newline=""), delimiter="\t", quotechar='"')
    errors: Counter[str] = Counter()
    try:
        header = next(reader)
    except StopIteration:
        return [], errors, 0
    rows, total = [], 0
    for fields in reader:
        if not fields or fields == [""]:
            continue
        total += 1
        if len(fields) != len(header):
            errors["malformed_row"] += 1
            continue
        rows.append(
            {k: (None if v in NA_VALUES else v) for k, v in zip(header, fields, strict=True)}
        )
    return rows, errors, total


def load_benchmark(uri: str, *, subset: int | None = None, seed: int = 0) -> Benchmark:
    """Read a TSV (``file://``, ``s3://``, ``hdfs://`` or a path) and resolve its images.

    ``subset`` keeps a random sample of N usable rows, drawn with ``seed`` (the paper's
    "random 500-case subset", not the first N rows, which in many TSVs are one category
    or one source): the rows are visited in a seeded random order until N are usable, so
    a bad row is replaced by another rather than shrinking the sample, and the sample is
    returned in file order. The draw depends only on the file and the seed, so every
    shard and every resumed run sees the same rows. References may point at rows outside
    the subset. Storage errors propagate (the runner records them per benchmark).
    """
    rows, errors, total = parse_tsv(read_uri_bytes(uri))
    by_index: dict[str, dict[str, Any]] = {}
    unique: list[dict[str, Any]] = []
    for r in rows:
        idx = r.get("index")
        if idx is None:
            errors["missing_index"] += 1
        elif idx in by_index:
            errors["duplicate_index"] += 1
        else:
            by_index[idx] = r
            unique.append(r)
    has_images = any("image" in r for r in rows)
    order = list(range(len(unique)))
    if subset is not None:
        random.Random(f"subset:{seed}").shuffle(order)
    kept: list[tuple[int, dict[str, Any]]] = []
    for pos in order:
        if subset is not None and len(kept) >= subset:
            break
        r = unique[pos]
        if has_images:
            try:
                r = {**r, "image": resolve_image(r, by_index)}
            except BadRow as err:
                errors[err.kind] += 1
                continue
        kept.append((pos, r))
    records = [r for _, r in sorted(kept, key=lambda item: item[0])]
    return Benchmark(records=records, errors=errors, total_rows=total)


def resolve_image(row: dict[str, Any], by_index: dict[str, dict[str, Any]]) -> str:
    """The row's own base64 image cell, or the one of the row it refers to."""
    cell = row.get("image")
    if cell is None:
        raise BadRow("missing_image", f"row {row.get('index')}: no image")
    if len(cell) <= REF_MAX_LEN:
        target = by_index.get(cell)
        if target is None:
            raise BadRow("missing_reference", f"row {row.get('index')}: refers to {cell!r}")
        cell = target.get("image")
        if cell is None or len(cell) <= REF_MAX_LEN:
            raise BadRow("missing_reference", f"row {row.get('index')}: reference is not an image")
    decode_images(cell)  # validate now, so a bad row is counted before generation
    return cell


def decode_images(cell: str) -> list[bytes]:
    """Image bytes of an ``image`` cell: one base64 string or a list literal of them."""
    payloads = [cell]
    if cell.startswith("["):
        import ast

        try:
            value = ast.literal_eval(cell)
        except (ValueError, SyntaxError) as err:
            raise BadRow("bad_image", f"unparsable image list: {err}") from None
        payloads = [str(v) for v in value] if isinstance(value, list) else [cell]
    out = []
    for p in payloads:
        try:
            out.append(base64.b64decode(p, validate=False))
        except (binascii.Error, ValueError) as err:
            raise BadRow("bad_image", f"undecodable base64 image: {err}") from None
        if not out[-1]:
            raise BadRow("bad_image", "empty image")
    return out


def write_tsv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """Serialise rows as a VLMEvalKit TSV (missing cells empty)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter="\t", quotechar='"', lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else str(r[c]) for c in columns])
    return buf.getvalue().encode("utf-8")
