"""WebDataset tar shards as img2dataset writes them (LAION, COYO, DataComp downloads).

A shard is a tar whose members are grouped by key: `<key>.jpg|png|webp` (the image),
`<key>.txt` (the caption / alt-text) and `<key>.json` (url, caption, status, size).
The key is the member path up to the first dot of its file name (the WebDataset
rule), and a sample's members are consecutive in the tar, so the shard is read as a
stream (`tarfile` mode `r|*`, no seeking, gzip or plain) holding one sample at a time.

Rows become caption data, not conversations: `alt_text` is the `.txt` text (or the
json's `caption`), `caption` is empty so a CaptionJob recaptions them, unless
`caption_from_alt_text` is set (then the web text is also the `caption`, to train on
it as it is). A key with metadata but no image (img2dataset's failed downloads when
kept) is a `missing_image` rejection. `rows_from_tar` is shared with the caption
worker, which reads tars directly (`input.format: webdataset`).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

from sailvl.data.importers.inputs import Meter, Unit, list_inputs, open_stream, parent_of
from sailvl.data.importers.jsonstream import CountingReader
from sailvl.data.importers.records import MISSING_IMAGE, Candidate, Reject

NAME = "webdataset"
SUFFIXES = (".tar", ".tar.gz", ".tgz")
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def plan(input_uri: str, image_root: str | None, options: dict[str, Any]) -> list[Unit]:
    files = list_inputs(input_uri, SUFFIXES)
    info = {"caption_from_alt_text": bool(options.get("caption_from_alt_text"))}
    return [
        Unit(index=i, uri=f, image_root=image_root or parent_of(f), source=_name(f), info=info)
        for i, f in enumerate(files)
    ]


def _name(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def split_member(name: str) -> tuple[str, str]:
    """(key, extension) of a member path: the key ends at the first dot of the name."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def iter_groups(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample, in tar order, one sample in memory."""
    key, members = None, {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            k, ext = split_member(info.name)
            if k != key and key is not None:
                yield key, members
                members = {}
            key = k
            f = tar.extractfile(info)
            members[ext] = f.read() if f is not None else b""
    if key is not None:
        yield key, members


def candidate(key: str, members: dict[str, bytes], caption_from_alt_text: bool) -> Candidate:
    meta: dict[str, Any] = {}
    if "json" in members:
        try:
            meta = json.loads(members["json"])
        except ValueError:
            meta = {}
    text = members["txt"].decode("utf-8", "replace") if "txt" in members else ""
    text = text or str(meta.get("caption") or "")
    images: list[bytes | str] = [members[e] for e in IMAGE_EXTS if e in members]
    cand = Candidate(
        id=str(meta.get("key") or key),
        images=images,
        turns=None,
        alt_text=text,
        caption=text if caption_from_alt_text else "",
        needs_conversation=False,
    )
    if not images:
        cand.reject = Reject(MISSING_IMAGE, f"no image member (status {meta.get('status')!r})")
    return cand


def rows_from_tar(stream: IO[bytes], caption_from_alt_text: bool = False) -> Iterator[Candidate]:
    for key, members in iter_groups(stream):
        yield candidate(key, members, caption_from_alt_text)


def rows(unit: Unit, meter: Meter) -> Iterator[Candidate]:
    with open_stream(unit.uri) as raw:
        reader = CountingReader(raw, meter)
        yield from rows_from_tar(reader, unit.info.get("caption_from_alt_text", False))  # type: ignore[arg-type]
