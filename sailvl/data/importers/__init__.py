"""`sailvl data import`: the field's dataset formats into the sailvl dataset format.

One module per format, each with `plan(input, image_root, options) -> [Unit]` (the
input files, in a fixed order) and `rows(unit, meter) -> Iterator[Candidate]` (the
file's rows, streamed): `llava` (LLaVA JSON / JSONL), `internvl` (InternVL meta
files), `webdataset` (img2dataset tar shards), `hfparquet` (Hugging Face datasets
Parquet). `records` checks and normalises a row into a sample or a counted rejection,
`parts` writes a unit into resumable numbered parts, `finalize` resolves duplicate ids
and writes the rejects file and the manifest, `main` is the command (worker processes,
progress bar). Importing this package imports no pyarrow, Pillow or boto3.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sailvl.data.importers.inputs import is_object, list_inputs, split_object

FORMATS = {
    "llava": "sailvl.data.importers.llava",
    "internvl": "sailvl.data.importers.internvl",
    "webdataset": "sailvl.data.importers.webdataset",
    "hfparquet": "sailvl.data.importers.hfparquet",
}
# Suffix -> format, for folders and for single files other than `.json`.
_BY_SUFFIX = {
    ".tar": "webdataset",
    ".tar.gz": "webdataset",
    ".tgz": "webdataset",
    ".parquet": "hfparquet",
    ".jsonl": "llava",
    ".json": "llava",
}


class FormatError(ValueError):
    """The input's format cannot be told (or is not one of `FORMATS`)."""


def load(name: str) -> ModuleType:
    if name not in FORMATS:
        raise FormatError(f"--format: {name!r} is not one of {sorted(FORMATS)}")
    return importlib.import_module(FORMATS[name])


def _suffix_format(name: str) -> str | None:
    return next((f for s, f in _BY_SUFFIX.items() if name.lower().endswith(s)), None)


def detect(uri: str) -> str:
    """The format of `uri` (a file or a folder / prefix), from names and a peek at JSON.

    A `.json` file starting with `[` is LLaVA; one starting with `{` whose values name
    an `annotation` is an InternVL meta file. A folder is named by the suffixes of the
    files in it; a folder holding a `manifest.json` is already a sailvl dataset."""
    if is_object(uri):
        if uri.lower().endswith(".json"):
            store, key = split_object(uri)
            with store.open(key) as f:
                head = f.read(4096).lstrip()
            if head.startswith(b"["):
                return "llava"
            if head.startswith(b"{") and b'"annotation"' in head:
                return "internvl"
            raise FormatError(f"{uri}: a JSON file that is neither a LLaVA list nor a meta file")
        found = _suffix_format(uri)
        if found is None:
            raise FormatError(f"{uri}: cannot tell the format from the name; pass --format")
        return found
    names = list_inputs(uri, tuple(_BY_SUFFIX))
    if any(n.rsplit("/", 1)[-1] == "manifest.json" for n in names):
        raise FormatError(f"{uri}: already a sailvl dataset (it has a manifest.json)")
    kinds = {k for n in names if (k := _suffix_format(n))}
    if len(kinds) != 1:
        what = "no importable files" if not kinds else f"several formats {sorted(kinds)}"
        raise FormatError(f"{uri}: {what}; pass --format ({' | '.join(FORMATS)})")
    return kinds.pop()
