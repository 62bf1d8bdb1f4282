"""The dataset format (DESIGN.md section 5): columns, sample checks and `manifest.json`.

A dataset is a URI prefix holding Parquet shards and a `manifest.json` that lists them
with their sample counts, byte sizes and SHA-256 digests. The manifest is written last:
a dataset without one is incomplete and is refused. pyarrow is imported lazily (the
schema is built by `arrow_schema()`), so this module stays cheap to import.

Columns: `id` (unique string), `images` (list of encoded image bytes), `alt_text`,
`caption`, `conversations` (list of {role, content}), `source`, `lang`. `id` and
`images` are required in every shard; the others default when a shard lacks them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

SCHEMA_VERSION = 1
FORMAT = "sailvl-dataset"
MANIFEST = "manifest.json"
REQUIRED_COLUMNS = ("id", "images")
ROLES = ("system", "user", "assistant")
# Defaults for optional columns a shard may lack (copied per row: lists are mutable).
DEFAULTS: dict[str, Any] = {
    "alt_text": "",
    "caption": "",
    "conversations": [],
    "source": "",
    "lang": "",
}
COLUMNS = ("id", "images", "alt_text", "caption", "conversations", "source", "lang")


class Turn(TypedDict):
    role: str
    content: str


class Sample(TypedDict):
    id: str
    images: list[bytes]
    alt_text: str
    caption: str
    conversations: list[Turn]
    source: str
    lang: str


class ManifestError(ValueError):
    """The manifest is missing, malformed, or disagrees with its shards."""


class ShardError(ValueError):
    """A shard cannot be used; the message names the shard."""


class SampleError(ValueError):
    """A sample breaks the format; the message says which field and why."""


def arrow_schema() -> Any:
    """The Parquet schema of a shard."""
    import pyarrow as pa

    turn = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("id", pa.string()),
            ("images", pa.list_(pa.binary())),
            ("alt_text", pa.string()),
            ("caption", pa.string()),
            ("conversations", pa.list_(turn)),
            ("source", pa.string()),
            ("lang", pa.string()),
        ]
    )


def check_sample(raw: dict[str, Any]) -> Sample:
    """Return `raw` as a full `Sample` (defaults filled) or raise `SampleError`."""
    sid = raw.get("id")
    if not isinstance(sid, str) or not sid:
        raise SampleError(f"id: must be a non-empty string, got {sid!r}")
    images = raw.get("images")
    if not isinstance(images, list) or not all(isinstance(b, bytes) for b in images):
        raise SampleError(f"images: must be a list of bytes (sample {sid})")
    out: dict[str, Any] = {"id": sid, "images": images}
    for name, default in DEFAULTS.items():
        value = raw.get(name)
        out[name] = (
            (list(default) if isinstance(default, list) else default) if value is None else value
        )
    for name in ("alt_text", "caption", "source", "lang"):
        if not isinstance(out[name], str):
            raise SampleError(f"{name}: must be a string (sample {sid})")
    turns = out["conversations"]
    if not isinstance(turns, list):
        raise SampleError(f"conversations: must be a list (sample {sid})")
    for turn in turns:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            raise SampleError(f"conversations: role must be one of {ROLES} (sample {sid})")
        if not isinstance(turn.get("content"), str):
            raise SampleError(f"conversations: content must be a string (sample {sid})")
    return out  # type: ignore[return-value]


@dataclass(kw_only=True)
class ShardInfo:
    """One shard as the manifest records it."""

    # Key of the shard relative to the dataset URI.
    path: str
    # Rows in the shard.
    samples: int
    # Size of the shard object in bytes.
    bytes: int
    # Hex SHA-256 of the shard object ("" = not recorded).
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or ".." in self.path.split("/"):
            raise ManifestError(f"shards.path: must be a relative key, got {self.path!r}")
        if self.samples < 0:
            raise ManifestError(f"shards.samples: negative for shard {self.path}")
        if self.bytes < 0:
            raise ManifestError(f"shards.bytes: negative for shard {self.path}")


@dataclass(kw_only=True)
class Manifest:
    """The `manifest.json` of a dataset."""

    # The shards in write order.
    shards: list[ShardInfo]
    # Format version; readers refuse versions they do not know.
    schema_version: int = SCHEMA_VERSION
    # Free-form provenance (generator, seed, source dataset URI, ...).
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ManifestError(
                f"schema_version: {self.schema_version} is not supported (want {SCHEMA_VERSION})"
            )
        paths = [s.path for s in self.shards]
        if len(set(paths)) != len(paths):
            raise ManifestError("shards: a shard path is listed twice")

    @property
    def num_samples(self) -> int:
        return sum(s.samples for s in self.shards)

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "schema_version": self.schema_version,
            "num_samples": self.num_samples,
            "columns": list(COLUMNS),
            "shards": [asdict(s) for s in self.shards],
            "meta": self.meta,
        }
        return json.dumps(doc, indent=1, sort_keys=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise ManifestError(f"format: expected {FORMAT!r}, got {doc.get('format')!r}")
            shards = [ShardInfo(**s) for s in doc["shards"]]
            manifest = cls(
                shards=shards, schema_version=int(doc["schema_version"]), meta=doc.get("meta", {})
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"manifest.json is malformed: {exc}") from exc
        if "num_samples" in doc and doc["num_samples"] != manifest.num_samples:
            raise ManifestError(
                f"num_samples: {doc['num_samples']} != sum of shard samples {manifest.num_samples}"
            )
        return manifest
