"""Fixtures for the import tests (written by the tests themselves), and the tests of the
incremental JSON reader they rely on.

Each `write_*` builds a small input in one of the field's formats with good rows (single
image, multi-image, text-only, implicit placeholder) and broken rows of every reason
that applies to the format, and returns an `Expected`: the samples the import must
produce (images as the exact file bytes, conversations in template roles) and the
reason each rejected id must be listed with.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sailvl.data.importers.jsonstream import CountingReader, iter_json_array, iter_json_lines


@dataclass
class Expected:
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejects: dict[str, str] = field(default_factory=dict)  # id -> reason


def image(seed: int, fmt: str = "PNG", size: int = 24) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size + seed % 7, size), ((seed * 37) % 256, (seed * 91) % 256, 7))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def broken_image() -> bytes:
    return image(99)[:40]  # a PNG header, then nothing: Pillow cannot decode it


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def llava_rows(root: Path, exp: Expected, prefix: str = "", n_good: int = 3) -> list[Any]:
    """LLaVA rows (from/value), images written under `root`; fills `exp`."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows: list[Any] = []

    def img(name: str, data: bytes) -> str:
        (root / "img" / name).write_bytes(data)
        return f"img/{name}"

    for i in range(n_good):
        data = image(i + len(prefix) * 13)
        rows.append({"id": f"single-{i}", "image": img(f"s{i}.png", data), "conversations": [
            {"from": "human", "value": f"<image>\nWhat is {i}?"}, {"from": "gpt", "value": f"It is {i}."}]})  # fmt: skip
        exp.samples[prefix + f"single-{i}"] = {
            "images": [data],
            "conversations": [user(f"<image>\nWhat is {i}?"), bot(f"It is {i}.")],
        }
    a, b = image(50), image(51, "JPEG")
    rows.append({"id": "multi", "image": [img("m0.png", a), img("m1.jpg", b)], "conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "<image>\n<image>\nCompare."}, {"from": "gpt", "value": "Same."},
        {"from": "human", "value": "Sure?"}, {"from": "gpt", "value": "Yes."}]})  # fmt: skip
    exp.samples[prefix + "multi"] = {
        "images": [a, b],
        "conversations": [
            {"role": "system", "content": "Be brief."},
            user("<image>\n<image>\nCompare."), bot("Same."), user("Sure?"), bot("Yes."),
        ],
    }  # fmt: skip
    rows.append({"id": "text", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]})  # fmt: skip
    exp.samples[prefix + "text"] = {"images": [], "conversations": [user("Hi"), bot("Hello")]}
    c = image(60)
    rows.append({"id": "implicit", "image": img("i.png", c), "conversations": [
        {"from": "human", "value": "Describe."}, {"from": "gpt", "value": "A square."}]})  # fmt: skip
    exp.samples[prefix + "implicit"] = {
        "images": [c], "conversations": [user("<image>\nDescribe."), bot("A square.")]}  # fmt: skip
    bad = [
        ("missing", "missing_image", {"image": "img/nope.png"}),
        ("broken", "undecodable_image", {"image": img("broken.png", broken_image())}),
        ("mismatch", "placeholder_mismatch", {"image": img("mm.png", image(70)),
         "conversations": [{"from": "human", "value": "<image><image>Two?"},
                           {"from": "gpt", "value": "One."}]}),
        ("empty", "empty_conversation", {"image": img("e.png", image(71)), "conversations": []}),
        ("badrole", "bad_conversation", {"conversations": [
            {"from": "robot", "value": "x"}, {"from": "gpt", "value": "y"}]}),
    ]  # fmt: skip
    for sid, reason, fields in bad:
        row = {"id": sid, "conversations": [
            {"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}]}  # fmt: skip
        row.update(fields)
        rows.append(row)
        exp.rejects[prefix + sid] = reason
    rows.append({"id": "single-0", "conversations": [
        {"from": "human", "value": "dup"}, {"from": "gpt", "value": "dup"}]})  # fmt: skip
    exp.rejects[prefix + "single-0"] = "duplicate_id"
    return rows


def write_llava(root: Path) -> tuple[Path, Expected]:
    exp = Expected()
    rows = llava_rows(root, exp)
    path = root / "llava.json"
    path.write_text(json.dumps(rows, indent=1))
    return path, exp


def write_internvl(root: Path) -> tuple[Path, Expected]:
    """A meta file with two datasets (JSONL annotations); one has an unparsable line."""
    exp = Expected()
    meta = {}
    for name in ("alpha", "beta"):
        sub = root / name
        sub.mkdir(parents=True)
        sub_exp = Expected()
        rows = llava_rows(sub, sub_exp, n_good=2)
        lines = [json.dumps(r) for r in rows]
        if name == "beta":
            lines.insert(2, '{"id": "cut", "conversations": [')
            sub_exp.rejects["2"] = "bad_row"  # no id readable: its position names it
        (root / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        exp.samples.update({f"{name}/{k}": v for k, v in sub_exp.samples.items()})
        exp.rejects.update({f"{name}/{k}": v for k, v in sub_exp.rejects.items()})
        meta[name] = {"root": name, "annotation": f"{name}.jsonl", "repeat_time": 2,
                      "length": len(rows), "data_augment": False}  # fmt: skip
    path = root / "meta.json"
    path.write_text(json.dumps(meta))
    return path, exp


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_webdataset(
    root: Path, shards: int = 2, per_shard: int = 4, duplicate: bool = True
) -> tuple[Path, Expected]:
    """img2dataset-style shards: key.jpg|png|webp, key.txt, key.json."""
    exp = Expected()
    root.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        members = []
        for i in range(per_shard):
            key = f"{s:05d}{i:04d}"
            ext, fmt = [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")][i % 3]
            data = image(s * 100 + i, fmt)
            text = f"alt text {key}"
            members += [(f"{key}.{ext}", data), (f"{key}.txt", text.encode()),
                        (f"{key}.json", json.dumps({"key": key, "url": f"https://x/{key}",
                                                     "caption": text, "status": "success"}).encode())]  # fmt: skip
            exp.samples[key] = {"images": [data], "conversations": [], "alt_text": text}
        members += [(f"{s:05d}9998.json", json.dumps({"key": f"{s:05d}9998", "status": "failed_to_download"}).encode()),
                    (f"{s:05d}9998.txt", b"lost"),
                    (f"{s:05d}9999.jpg", broken_image()), (f"{s:05d}9999.txt", b"broken")]  # fmt: skip
        exp.rejects[f"{s:05d}9998"] = "missing_image"
        exp.rejects[f"{s:05d}9999"] = "undecodable_image"
        if duplicate and s == shards - 1:  # the first key again, in another shard
            members += [("000000000.png", image(7)), ("000000000.txt", b"dup")]
            exp.rejects["000000000"] = "duplicate_id"
        _tar(root / f"{s:05d}.tar", members)
    return root, exp


def write_hfparquet(root: Path) -> tuple[Path, Expected]:
    """`datasets`-style Parquet: `images` list of {bytes, path}, `messages` with parts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    exp = Expected()
    root.mkdir(parents=True, exist_ok=True)
    (root / "side.png").write_bytes(side := image(80))

    def msgs(q: list[dict[str, Any]], a: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": q},
                {"role": "assistant", "content": [{"type": "text", "text": a}]}]  # fmt: skip

    img_part, txt = {"type": "image"}, (lambda t: {"type": "text", "text": t})
    rows = []
    for i in range(3):
        data = image(200 + i)
        rows.append({"id": f"hf-{i}", "images": [{"bytes": data, "path": None}],
                     "messages": msgs([img_part, txt(f"Q{i}")], f"A{i}")})  # fmt: skip
        exp.samples[f"hf-{i}"] = {"images": [data], "conversations": [user(f"<image>\nQ{i}"), bot(f"A{i}")]}  # fmt: skip
    a, b = image(210), image(211)
    rows.append({"id": "hf-multi", "images": [{"bytes": a, "path": None}, {"bytes": b, "path": None}],
                 "messages": msgs([img_part, img_part, txt("Two")], "Both")})  # fmt: skip
    exp.samples["hf-multi"] = {"images": [a, b], "conversations": [user("<image>\n<image>\nTwo"), bot("Both")]}  # fmt: skip
    rows.append({"id": "hf-path", "images": [{"bytes": None, "path": "side.png"}],
                 "messages": msgs([img_part, txt("P")], "Q")})  # fmt: skip
    exp.samples["hf-path"] = {"images": [side], "conversations": [user("<image>\nP"), bot("Q")]}
    bad = [
        ("hf-missing", "missing_image", [{"bytes": None, "path": "gone.png"}], [img_part, txt("x")]),
        ("hf-broken", "undecodable_image", [{"bytes": broken_image(), "path": None}], [img_part, txt("x")]),
        ("hf-mismatch", "placeholder_mismatch", [{"bytes": image(220), "path": None}],
         [img_part, img_part, txt("x")]),
    ]  # fmt: skip
    for sid, reason, imgs, q in bad:
        rows.append({"id": sid, "images": imgs, "messages": msgs(q, "y")})
        exp.rejects[sid] = reason
    rows.append({"id": "hf-empty", "images": [], "messages": []})
    exp.rejects["hf-empty"] = "empty_conversation"
    rows.append({"id": "hf-0", "images": [], "messages": msgs([txt("again")], "dup")})
    exp.rejects["hf-0"] = "duplicate_id"
    half = len(rows) // 2
    for n, chunk in enumerate((rows[:half], rows[half:])):
        pq.write_table(pa.Table.from_pylist(chunk), root / f"train-{n:05d}-of-00002.parquet")
    return root, exp


def check_import(out: str, exp: Expected) -> dict[str, Any]:
    """Every expected sample exactly once with byte-identical images and its
    conversations; every rejected id listed with its reason; counts in the manifest."""
    from sailvl.data.dataset import Dataset
    from sailvl.storage import open_store

    ds = Dataset.open(out)
    ds.validate(deep=True)
    got: dict[str, Any] = {}
    for i in range(len(ds.shards)):
        for row in ds.read_shard(i).rows:
            assert row is not None
            assert row["id"] not in got, f"{row['id']} imported twice"
            got[row["id"]] = row
    assert sorted(got) == sorted(exp.samples)
    for sid, want in exp.samples.items():
        assert got[sid]["images"] == want["images"], sid
        assert got[sid]["conversations"] == want["conversations"], sid
        if "alt_text" in want:
            assert got[sid]["alt_text"] == want["alt_text"], sid
    lines = open_store(out).read_bytes("rejects.jsonl").decode().splitlines()
    rejects = [json.loads(line) for line in lines]
    assert sorted((r["id"], r["reason"]) for r in rejects) == sorted(exp.rejects.items())
    info = ds.manifest.meta["import"]
    counts = {k: v for k, v in info["rejected"].items() if v}
    want_counts: dict[str, int] = {}
    for reason in exp.rejects.values():
        want_counts[reason] = want_counts.get(reason, 0) + 1
    assert counts == want_counts
    assert info["rows_in"] == len(exp.samples) + len(exp.rejects)
    assert info["rows_out"] == len(exp.samples)
    return info


# -- the incremental JSON reader ------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_json_array_any_chunking(chunk: int) -> None:
    doc = [{"id": i, "t": "é€😀" * i, "n": [1.5, None, True]} for i in range(20)] + [{}]
    raw = json.dumps(doc, ensure_ascii=False, indent=2).encode()
    assert list(iter_json_array(CountingReader(io.BytesIO(raw)), chunk=chunk)) == doc


@pytest.mark.parametrize("raw", [b"", b"{}", b"[{}", b'[{"a": 1} {"b": 2}]', b'[{"a": 1},'])
def test_json_array_refuses_broken_documents(raw: bytes) -> None:
    with pytest.raises(ValueError, match="json"):
        list(iter_json_array(CountingReader(io.BytesIO(raw)), chunk=4))


def test_json_array_memory_is_one_element_not_the_file() -> None:
    """The reader never asks for more than a chunk beyond the element being decoded."""

    class Spy(io.BytesIO):
        biggest = 0

        def read(self, n: int | None = -1) -> bytes:
            Spy.biggest = max(Spy.biggest, n if n is not None and n >= 0 else 1 << 62)
            return super().read(n)

    doc = [{"id": i, "pad": "x" * 100} for i in range(5000)]
    raw = json.dumps(doc).encode()
    n = sum(1 for _ in iter_json_array(CountingReader(Spy(raw)), chunk=256))
    assert n == 5000 and Spy.biggest <= 256


def test_json_lines_marks_bad_lines() -> None:
    raw = b'{"a": 1}\n\n{oops\n{"b": 2}'
    rows = list(iter_json_lines(CountingReader(io.BytesIO(raw))))
    assert rows[0] == {"a": 1} and rows[2] == {"b": 2}
    assert "line 3" in rows[1]["__bad_line__"]
