"""Incremental readers for a JSON array of objects and for JSON Lines, in bounded memory.

A LLaVA annotation file is one JSON list that can run to many gigabytes, so `json.load`
is out. `iter_json_array` reads the stream in chunks and decodes one element at a time
with `json.JSONDecoder.raw_decode`, keeping only the undecoded tail in a buffer: memory
is one chunk plus the largest single element, whatever the file size.

Mechanism: after `[`, the reader skips whitespace and the `,` between elements, then
asks `raw_decode` for one value starting at the cursor. If the value is cut off by the
end of the buffer, `raw_decode` raises; the reader then appends the next chunk and
tries again (a chunk that is still too short is doubled, so a huge element costs
O(size) reads, not O(size / chunk) retries of a full decode). A cut-off element is
only ever retried, never yielded: elements are objects or arrays, whose closing bracket
makes a complete decode unambiguous. A stream that ends inside an element or without
the closing `]` raises `ValueError` naming the byte offset.

`count_bytes` exposes how many bytes were read so far, for the importer's bytes/s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

CHUNK = 1 << 20
_WS = " \t\r\n"


class CountingReader:
    """Wraps a binary stream; `bytes_read` is the running total of bytes read."""

    def __init__(self, stream: IO[bytes], meter: Any = None) -> None:
        self.stream = stream
        self.bytes_read = 0
        self.meter = meter  # anything with a `bytes` counter (the import's progress)

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.bytes_read += len(data)
        if self.meter is not None:
            self.meter.bytes += len(data)
        return data


def iter_json_array(stream: CountingReader, chunk: int = CHUNK) -> Iterator[Any]:
    """Yield the elements of the top-level JSON array in `stream`, one at a time."""
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False
    pending = b""  # bytes of a UTF-8 character split across two chunks
    want = chunk

    def more() -> bool:
        nonlocal buf, pos, eof, pending
        data = stream.read(want)
        if not data:
            eof = True
            if pending:
                raise ValueError("json: stream ends inside a UTF-8 character")
            return False
        raw = pending + data
        try:
            text = raw.decode("utf-8")
            pending = b""
        except UnicodeDecodeError as exc:
            if exc.start < len(raw) - 3:
                raise ValueError(f"json: invalid UTF-8 near byte {stream.bytes_read}") from exc
            text, pending = raw[: exc.start].decode("utf-8"), raw[exc.start :]
        buf = buf[pos:] + text
        pos = 0
        return True

    def skip(chars: str) -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in chars:
                pos += 1
            if pos < len(buf) or not more():
                return

    skip(_WS)
    if pos >= len(buf) or buf[pos] != "[":
        raise ValueError("json: expected a top-level array '['")
    pos += 1
    first = True
    while True:
        skip(_WS)
        if pos < len(buf) and buf[pos] == "]":
            return
        if not first:
            if pos >= len(buf) or buf[pos] != ",":
                raise ValueError(f"json: expected ',' or ']' near byte {stream.bytes_read}")
            pos += 1
            skip(_WS)
        first = False
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if eof:
                    raise ValueError(
                        f"json: truncated or invalid element near byte {stream.bytes_read}: {exc}"
                    ) from exc
                if not more():
                    raise ValueError(
                        f"json: stream ends inside an element (byte {stream.bytes_read})"
                    ) from exc
                want = min(want * 2, 1 << 28)
                continue
            # A number at the very end of the buffer might continue in the next chunk;
            # elements here are objects, which end with '}', so this is only a guard.
            if end == len(buf) and not isinstance(value, (dict, list)) and not eof and more():
                continue
            want = chunk
            pos = end
            yield value
            break


def iter_json_lines(stream: CountingReader) -> Iterator[Any]:
    """Yield one decoded value per non-blank line (JSON Lines); line numbers in errors."""
    pending = b""
    lineno = 0
    while True:
        data = stream.read(CHUNK)
        if not data:
            break
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        for line in lines:
            lineno += 1
            if line.strip():
                yield _line(line, lineno)
    if pending.strip():
        yield _line(pending, lineno + 1)


def _line(line: bytes, lineno: int) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        return {"__bad_line__": f"line {lineno}: {exc}"}
