"""One input row -> one dataset sample or one counted rejection.

Every format module turns its rows into `Candidate`s (id, image references, raw turns,
texts); `to_sample` is the single place where a candidate is checked and normalised, so
the rules are the same for LLaVA, InternVL, WebDataset and HF Parquet:

- conversation turns (`from`/`value` or `role`/`content`) are mapped onto the chat
  template's roles (`human` -> user, `gpt` -> assistant, `system`; see
  `sailvl.data.template.normalize_conversation`); HF content parts
  (`[{type: image}, {type: text, text}]`) become `<image>` placeholders and text;
- `<image>` placeholders are counted against the images: more placeholders than
  images, some but not all, or one outside a user turn is `placeholder_mismatch`; none
  at all with n images is InternVL's convention and gets n placeholders at the start of
  the first user turn (`template.place_images`), so the stored sample is explicit;
- every image is fetched (`missing_image` if absent) and decoded once with Pillow
  (`undecodable_image`); the stored bytes are the original file's bytes, unchanged.

A rejection is a `Reject` exception carrying one of `REASONS`; the caller counts it and
writes the row id to the rejects file. Duplicate ids are found later, over the whole
output (`sailvl.data.importers.finalize`), because rows of different input files are
imported in parallel.
"""

from __future__ import annotations

import io
import posixpath
import threading
from dataclasses import dataclass, field
from typing import Any

from sailvl.data.importers.inputs import store_at
from sailvl.storage import NotFoundError

MISSING_IMAGE = "missing_image"
UNDECODABLE_IMAGE = "undecodable_image"
PLACEHOLDER_MISMATCH = "placeholder_mismatch"
EMPTY_CONVERSATION = "empty_conversation"
BAD_CONVERSATION = "bad_conversation"  # unknown role, non-text value, no assistant turn
BAD_ROW = "bad_row"  # not an object, unparsable JSON line, unusable fields
DUPLICATE_ID = "duplicate_id"
REASONS = (
    MISSING_IMAGE,
    UNDECODABLE_IMAGE,
    PLACEHOLDER_MISMATCH,
    EMPTY_CONVERSATION,
    BAD_CONVERSATION,
    BAD_ROW,
    DUPLICATE_ID,
)
PLACEHOLDER = "<image>"


class Reject(Exception):
    """A row that cannot become a sample; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Candidate:
    """A row as a format read it, before checks. Images are bytes or a path/URI."""

    id: str
    images: list[bytes | str] = field(default_factory=list)
    turns: list[Any] | None = None  # raw turns; None = the format has no conversations
    alt_text: str = ""
    caption: str = ""
    lang: str = ""
    # Conversations are required (instruction data) unless the row has a caption or
    # alt-text to be recaptioned (WebDataset, caption Parquet).
    needs_conversation: bool = True
    # Set when the format already found the row unusable (bad JSON line, wrong types).
    reject: Reject | None = None


class ImageFetcher:
    """Reads image files by path relative to an image root, or by absolute path / URI
    (stores come from `inputs.store_at`: one per folder and process, not per row)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.bytes_read = 0  # for the progress line (updated from fetch threads too)
        self._lock = threading.Lock()

    def fetch(self, ref: str) -> bytes:
        if ref.startswith(("http://", "https://")):
            raise Reject(MISSING_IMAGE, f"{ref}: web URLs are not fetched (download first)")
        if "://" in ref or ref.startswith("/"):
            parent, name = ref.rsplit("/", 1)
            store, key = store_at(parent or "/"), name
        else:
            key = posixpath.normpath(ref)
            if key.startswith("../") or key == "..":
                raise Reject(MISSING_IMAGE, f"{ref}: path leaves the image root")
            store = store_at(self.root)
        try:
            data = store.read_bytes(key)
        except NotFoundError as exc:
            raise Reject(MISSING_IMAGE, ref) from exc
        with self._lock:
            self.bytes_read += len(data)
        return data


def check_image(data: bytes, what: str) -> None:
    """Decode `data` fully (truncated files fail here, not in training)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad data
        raise Reject(UNDECODABLE_IMAGE, f"{what}: {type(exc).__name__}") from exc


def turn_text(content: Any) -> str:
    """A turn's content as text: HF content parts become `<image>` and their text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                raise Reject(BAD_CONVERSATION, f"content part {part!r}")
            if part.get("type") == "image":
                parts.append(PLACEHOLDER)
            elif part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise Reject(BAD_CONVERSATION, f"content part type {part.get('type')!r}")
        return "\n".join(parts)
    raise Reject(BAD_CONVERSATION, f"content {content!r}")


def normalise_turns(raw: list[Any] | None, num_images: int) -> list[dict[str, str]]:
    """Turns in the template's roles with exactly `num_images` placeholders, or Reject."""
    from sailvl.data.template import normalize_conversation, place_images

    if not raw:
        raise Reject(EMPTY_CONVERSATION)
    turns: list[dict[str, Any]] = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, dict):
            raise Reject(BAD_CONVERSATION, f"turn {i} is {type(turn).__name__}")
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        turns.append({"role": role, "content": turn_text(content)})
    if all(not str(t["content"]).replace(PLACEHOLDER, "").strip() for t in turns):
        raise Reject(EMPTY_CONVERSATION, "every turn is empty")
    try:
        pairs = normalize_conversation(turns)
    except ValueError as exc:
        raise Reject(BAD_CONVERSATION, str(exc)) from exc
    found = sum(c.count(PLACEHOLDER) for _, c in pairs)
    if found not in (0, num_images):
        raise Reject(PLACEHOLDER_MISMATCH, f"{found} <image> placeholders, {num_images} images")
    try:
        pairs = place_images(pairs, num_images)
    except ValueError as exc:
        raise Reject(PLACEHOLDER_MISMATCH, str(exc)) from exc
    return [{"role": r, "content": c} for r, c in pairs]


def to_sample(cand: Candidate, fetcher: ImageFetcher, source: str) -> dict[str, Any]:
    """The dataset row for `cand` (see the module docstring), or raise `Reject`."""
    if cand.reject is not None:
        raise cand.reject
    if cand.turns is None or (not cand.turns and not cand.needs_conversation):
        if cand.needs_conversation and not cand.caption:
            raise Reject(EMPTY_CONVERSATION)
        turns: list[dict[str, str]] = []
    else:
        turns = normalise_turns(cand.turns, len(cand.images))
    images = []
    for k, ref in enumerate(cand.images):
        data = ref if isinstance(ref, bytes) else fetcher.fetch(ref)
        check_image(data, ref if isinstance(ref, str) else f"image {k}")
        images.append(data)
    return {
        "id": cand.id,
        "images": images,
        "alt_text": cand.alt_text,
        "caption": cand.caption,
        "conversations": turns,
        "source": source,
        "lang": cand.lang,
    }
