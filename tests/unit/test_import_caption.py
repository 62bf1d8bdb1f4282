"""The CaptionJob reads WebDataset tars and image(-URL) Parquet directly.

The caption worker (fake backend from test_caption_worker, which captions from the
image's pixels) runs on an img2dataset-style tar input and on Parquet inputs, one with
embedded `{bytes, path}` images and one with a `url` column of file:// URLs plus an
http URL. Checked: the output is a dataset (manifest, one `<stem>.parquet` per input
shard) with every input row exactly once, captions from the very image bytes, the
web text used as alt-text, rows without a usable image marked `no_image` /
`broken_image`, no network fetch when http is not allowed, and a rerun that skips
every committed shard.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sailvl.caption.main import config_from_spec
from sailvl.caption.worker import CaptionWorker
from sailvl.data.dataset import Dataset
from sailvl.storage import open_store
from tests.unit.test_caption_worker import FakeBackend, config
from tests.unit.test_import_fixtures import image, write_webdataset


def caption_rows(cfg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    w = CaptionWorker(cfg, FakeBackend(), open_store(cfg.input_uri), open_store(cfg.output_uri))
    snap = w.run()
    ds = Dataset.open(cfg.output_uri)
    rows: dict[str, Any] = {}
    for i in range(len(ds.shards)):
        for row in ds.read_shard(i).rows:
            assert row is not None and row["id"] not in rows
            rows[row["id"]] = row
    status = {}
    for info in ds.shards:
        table = pq.read_table(Path(cfg.output_uri.removeprefix("file://")) / info.path)
        status.update(
            zip(
                table.column("id").to_pylist(),
                table.column("caption_status").to_pylist(),
                strict=True,
            )
        )
    return rows, {"snap": snap, "status": status, "shards": [s.path for s in ds.shards]}


def test_caption_webdataset_tars_directly(tmp_path: Path) -> None:
    _, exp = write_webdataset(tmp_path / "in", shards=2, per_shard=3, duplicate=False)
    cfg = config(tmp_path, input_format="webdataset", stats_sample=0)
    rows, out = caption_rows(cfg)
    assert out["shards"] == ["00000.parquet", "00001.parquet"]
    assert set(rows) == set(exp.samples) | set(exp.rejects)
    for sid, sample in exp.samples.items():
        assert rows[sid]["images"] == sample["images"]
        assert rows[sid]["alt_text"] == sample["alt_text"]
        assert out["status"][sid] == "ok" and rows[sid]["caption"].startswith("A picture")
    assert out["status"]["000009998"] == "no_image"
    assert out["status"]["000009999"] == "broken_image"
    # A rerun finds every output shard committed and captions nothing.
    again = CaptionWorker(cfg, FakeBackend(), open_store(cfg.input_uri), open_store(cfg.output_uri))
    assert again.pending() == []


def test_caption_image_url_parquet_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*a: Any, **k: Any) -> Any:
        raise AssertionError("the captioner must not fetch from the internet here")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    (tmp_path / "web").mkdir()
    imgs = {f"u{i}": image(300 + i) for i in range(3)}
    for sid, data in imgs.items():
        (tmp_path / "web" / f"{sid}.png").write_bytes(data)
    (tmp_path / "in").mkdir()
    urls = pa.table({
        "url": [f"file://{tmp_path}/web/{s}.png" for s in imgs]
               + ["http://192.0.2.1/cat.jpg", f"file://{tmp_path}/web/gone.png"],
        "caption": ["web text 0", "web text 1", "web text 2", "remote", "gone"],
        "id": [*imgs, "remote", "gone"],
    })  # fmt: skip
    pq.write_table(urls, tmp_path / "in" / "urls.parquet")
    embedded = pa.Table.from_pylist(
        [{"id": "e0", "image": {"bytes": image(400), "path": None}, "caption": "alt e0"}]
    )
    pq.write_table(embedded, tmp_path / "in" / "embedded.parquet")
    cfg = config(tmp_path, input_format="parquet", stats_sample=0)
    rows, out = caption_rows(cfg)
    assert sorted(out["shards"]) == ["embedded.parquet", "urls.parquet"]
    assert set(rows) == {*imgs, "remote", "gone", "e0"}
    for sid, data in imgs.items():
        assert rows[sid]["images"] == [data] and out["status"][sid] == "ok"
    assert rows["u1"]["alt_text"] == "web text 1"
    assert rows["e0"]["images"] == [image(400)] and rows["e0"]["alt_text"] == "alt e0"
    assert Counter(out["status"].values()) == {"ok": 4, "no_image": 2}


def test_input_format_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="input_format"):
        config(tmp_path, input_format="zip")


def test_spec_input_format_reaches_the_worker_config() -> None:
    from sailvl.api.caption import CaptionJobSpec

    spec = CaptionJobSpec.model_validate(
        {"input": "s3://b/laion/", "inputFormat": "webdataset", "output": "s3://b/out",
         "model": {"uri": "s3://b/m"}, "backend": "transformers", "accelerator": "cpu"}
    )  # fmt: skip
    assert config_from_spec(spec).input_format == "webdataset"
