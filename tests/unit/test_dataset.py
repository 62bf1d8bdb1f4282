"""Dataset format: writer rolling, manifest golden fields, and every bad-input path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sailvl.data.dataset import Dataset, DatasetWriter, WriterConfig
from sailvl.data.manifest import (
    Manifest,
    ManifestError,
    SampleError,
    ShardError,
    ShardInfo,
    check_sample,
)
from sailvl.storage import open_store


def row(i: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {"id": f"s{i}", "images": [bytes([i % 256]) * 10]}
    base.update(kw)
    return base


def write(path: Path, n: int, **cfg: object) -> Manifest:
    with DatasetWriter(str(path), WriterConfig(**cfg)) as w:  # type: ignore[arg-type]
        for i in range(n):
            w.write(row(i, caption=f"c{i}", conversations=[{"role": "user", "content": "q"}]))
    return Manifest.from_json(open_store(str(path)).read_bytes("manifest.json"))


def test_writer_rolls_by_samples_and_manifest_is_golden(tmp_path: Path) -> None:
    m = write(tmp_path, 25, max_samples_per_shard=10)
    assert [s.samples for s in m.shards] == [10, 10, 5]
    assert [s.path for s in m.shards] == [f"part-0000{i}.parquet" for i in range(3)]
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["format"] == "sailvl-dataset" and doc["schema_version"] == 1
    assert doc["num_samples"] == 25
    assert doc["columns"] == [
        "id",
        "images",
        "alt_text",
        "caption",
        "conversations",
        "source",
        "lang",
    ]
    assert set(doc["shards"][0]) == {"path", "samples", "bytes", "sha256"}
    assert doc["shards"][0]["bytes"] == (tmp_path / "part-00000.parquet").stat().st_size
    ds = Dataset.open(str(tmp_path))
    ds.validate(deep=True)
    rows = ds.read_shard(2)
    assert [r["id"] for r in rows.rows if r] == [f"s{i}" for i in range(20, 25)]
    assert rows.rows[0]["lang"] == "" and rows.rows[0]["conversations"][0]["role"] == "user"
    assert not rows.reasons


def test_writer_rolls_by_bytes(tmp_path: Path) -> None:
    m = write(tmp_path, 12, max_bytes_per_shard=40)  # each row ~10 image bytes + text
    assert all(s.samples <= 4 for s in m.shards) and m.num_samples == 12


def test_crashed_writer_leaves_no_manifest(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        DatasetWriter(str(tmp_path), WriterConfig(max_samples_per_shard=2)) as w,
    ):
        for i in range(5):
            w.write(row(i))
        raise RuntimeError("killed")
    assert (tmp_path / "part-00000.parquet").exists()
    with pytest.raises(ManifestError, match="no manifest.json"):
        Dataset.open(str(tmp_path))


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"id": "", "images": []}, "id"),
        ({"id": "a", "images": ["str"]}, "images"),
        ({"id": "a", "images": [], "caption": 3}, "caption"),
        (
            {"id": "a", "images": [], "conversations": [{"role": "bot", "content": "x"}]},
            "conversations",
        ),
        ({"id": "a", "images": [], "conversations": [{"role": "user"}]}, "conversations"),
    ],
)
def test_check_sample_names_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(SampleError, match=f"^{field}:"):
        check_sample(raw)


def test_duplicate_id_is_refused(tmp_path: Path) -> None:
    w = DatasetWriter(str(tmp_path))
    w.write(row(1))
    with pytest.raises(SampleError, match="written twice"):
        w.write(row(1))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"max_samples_per_shard": 0}, "max_samples_per_shard"),
        ({"shard_pattern": "x"}, "shard_pattern"),
    ],
)
def test_writer_config_validation(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        WriterConfig(**kw)  # type: ignore[arg-type]


def test_manifest_validation() -> None:
    with pytest.raises(ManifestError, match="schema_version"):
        Manifest(shards=[], schema_version=99)
    with pytest.raises(ManifestError, match="shards.path"):
        ShardInfo(path="../x", samples=1, bytes=1)
    with pytest.raises(ManifestError, match="listed twice"):
        Manifest(shards=[ShardInfo(path="a", samples=1, bytes=1)] * 2)
    with pytest.raises(ManifestError, match="malformed"):
        Manifest.from_json("{not json")
    doc = json.loads(Manifest(shards=[ShardInfo(path="a", samples=2, bytes=1)]).to_json())
    doc["num_samples"] = 3
    with pytest.raises(ManifestError, match="num_samples"):
        Manifest.from_json(json.dumps(doc))


def _raw_shard(path: Path, name: str, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    (path / name).write_bytes(buf.getvalue())


def _manifest(path: Path, shards: list[tuple[str, int]]) -> None:
    infos = [ShardInfo(path=n, samples=k, bytes=(path / n).stat().st_size) for n, k in shards]
    (path / "manifest.json").write_text(Manifest(shards=infos).to_json())


def test_bad_rows_missing_columns_and_empty_shards_are_counted(tmp_path: Path) -> None:
    # A foreign shard: only id + images, one row with an empty id, one with null images.
    t = pa.table({"id": ["a", "", "c", "d"], "images": [[b"1"], [b"2"], None, [b"4"]]})
    _raw_shard(tmp_path, "x.parquet", t)
    _raw_shard(
        tmp_path,
        "empty.parquet",
        pa.table({"id": pa.array([], pa.string()), "images": pa.array([], pa.list_(pa.binary()))}),
    )
    _manifest(tmp_path, [("x.parquet", 4), ("empty.parquet", 0)])
    ds = Dataset.open(str(tmp_path))
    rows = ds.read_shard(0)
    assert [r["id"] if r else None for r in rows.rows] == ["a", None, None, "d"]
    assert rows.rows[0]["caption"] == "" and rows.rows[0]["conversations"] == []
    assert rows.reasons["bad_row:id"] == 1 and rows.reasons["bad_row:images"] == 1
    assert rows.reasons["missing_column:caption"] == 4
    assert ds.read_shard(1).reasons == {"empty_shard": 1}


@pytest.mark.parametrize(
    "defect", ["missing_column", "row_count", "size", "checksum", "garbage", "missing"]
)
def test_shard_defects_raise_naming_the_shard(tmp_path: Path, defect: str) -> None:
    write(tmp_path, 6, max_samples_per_shard=3)
    shard = tmp_path / "part-00001.parquet"
    doc = json.loads((tmp_path / "manifest.json").read_text())
    if defect == "missing_column":
        _raw_shard(tmp_path, shard.name, pa.table({"id": ["a", "b", "c"]}))
        doc["shards"][1].update(bytes=shard.stat().st_size, sha256="")
    elif defect == "row_count":
        doc["shards"][1]["samples"] = 4
        doc["num_samples"] = 7
    elif defect == "size":
        shard.write_bytes(shard.read_bytes() + b"x")
    elif defect == "checksum":
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif defect == "garbage":
        shard.write_bytes(b"\0" * shard.stat().st_size)
        doc["shards"][1]["sha256"] = ""
    else:
        shard.unlink()
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    ds = Dataset.open(str(tmp_path))
    ds.read_shard(0)  # the good shard still reads
    with pytest.raises((ShardError, ManifestError), match="part-00001.parquet"):
        ds.validate(deep=True)
    with pytest.raises(ShardError, match="part-00001.parquet"):
        ds.read_shard(1)
