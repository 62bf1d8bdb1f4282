"""`sailvl data import` on each format's fixture: detection, normalisation, rejects.

The fixtures (tests/unit/test_import_fixtures.py) hold good rows and broken rows of
every reason that applies to the format; `check_import` asserts every good sample
exactly once with byte-identical images and template-role conversations, and every
broken row in `rejects.jsonl` and the manifest's per-reason counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sailvl.cli import main
from sailvl.data.importers import FormatError, detect
from sailvl.data.manifest import MANIFEST
from tests.unit.test_import_fixtures import (
    check_import,
    write_hfparquet,
    write_internvl,
    write_llava,
    write_webdataset,
)

WRITERS = {
    "llava": write_llava,
    "internvl": write_internvl,
    "webdataset": lambda p: write_webdataset(p / "wds"),
    "hfparquet": lambda p: write_hfparquet(p / "hf"),
}


def run(*argv: str) -> int:
    return main(["data", "import", *argv, "--no-progress"])


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_import_each_format(tmp_path: Path, fmt: str) -> None:
    src, exp = WRITERS[fmt](tmp_path)
    assert detect(str(src)) == fmt
    out = tmp_path / "out"
    # Small parts: several parts per input file, so part boundaries are exercised too.
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--rows-per-shard", "3") == 0
    info = check_import(str(out), exp)
    assert info["format"] == fmt
    # A second run finds the manifest and changes nothing.
    before = (out / MANIFEST).read_bytes()
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--rows-per-shard", "3") == 0
    assert (out / MANIFEST).read_bytes() == before


def test_internvl_sources_keep_repeat_time(tmp_path: Path) -> None:
    src, exp = write_internvl(tmp_path)
    out = tmp_path / "out"
    assert run(str(src), str(out), "--max-reject-ratio", "1") == 0
    sources = check_import(str(out), exp)["sources"]
    assert set(sources) == {"alpha", "beta"}
    assert sources["alpha"]["repeat_time"] == 2
    assert sources["beta"]["rows"] == sources["beta"]["length"] + 1  # + the cut line


def test_webdataset_caption_from_alt_text(tmp_path: Path) -> None:
    from sailvl.data.dataset import Dataset

    src, exp = write_webdataset(tmp_path / "wds", shards=1)
    out = tmp_path / "out"
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--caption-from-alt-text") == 0
    rows = [r for r in Dataset.open(str(out)).read_shard(0).rows if r]
    assert rows and all(r["caption"] == r["alt_text"] == exp.samples[r["id"]]["alt_text"]
                        for r in rows)  # fmt: skip


def test_reject_ratio_fails_with_exit_2_and_no_manifest(tmp_path: Path) -> None:
    src, exp = write_llava(tmp_path)
    out = tmp_path / "out"
    ratio = len(exp.rejects) / (len(exp.rejects) + len(exp.samples))
    assert run(str(src), str(out), "--max-reject-ratio", f"{ratio * 0.9:.4f}") == 2
    assert not (out / MANIFEST).exists()
    listed = {json.loads(x)["id"] for x in (out / "rejects.jsonl").read_text().splitlines()}
    assert listed == set(exp.rejects)
    # The same import with a limit the data meets finalises from the committed parts.
    assert run(str(src), str(out), "--max-reject-ratio", f"{ratio:.4f}") == 0
    check_import(str(out), exp)


def test_two_worker_processes(tmp_path: Path) -> None:
    src, exp = write_webdataset(tmp_path / "wds", shards=3)
    out = tmp_path / "out"
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--workers", "2") == 0
    check_import(str(out), exp)


def test_detection_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.tar").write_bytes(b"")
    (tmp_path / "mixed" / "b.parquet").write_bytes(b"")
    with pytest.raises(FormatError, match="several formats"):
        detect(str(tmp_path / "mixed"))
    (tmp_path / "x.json").write_text('"just a string"')
    with pytest.raises(FormatError, match="neither"):
        detect(str(tmp_path / "x.json"))
    assert run(str(tmp_path / "mixed"), str(tmp_path / "out")) == 2


def test_a_changed_plan_is_refused(tmp_path: Path) -> None:
    src, _ = write_llava(tmp_path)
    out = tmp_path / "out"
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--rows-per-shard", "4") == 0
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--rows-per-shard", "5") == 2


def test_sharded_pods_the_last_one_finalises(tmp_path: Path) -> None:
    src, exp = write_webdataset(tmp_path / "wds", shards=3)
    out = tmp_path / "out"
    common = [str(src), str(out), "--max-reject-ratio", "1", "--shard-count", "2"]
    assert run(*common, "--shard-index", "1") == 0
    assert not (out / MANIFEST).exists()  # unit 0 and 2 (pod 0's) are missing
    assert run(*common, "--shard-index", "0") == 0
    check_import(str(out), exp)
    assert run(*common, "--shard-index", "2") == 2


def test_hf_cauldron_texts_and_url_columns(tmp_path: Path) -> None:
    """`texts` rounds (The Cauldron) become turns; a `url` column of file:// URLs is read
    through storage, an http URL is a missing image (the import never crawls)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sailvl.data.dataset import Dataset
    from tests.unit.test_import_fixtures import image

    (tmp_path / "in").mkdir()
    (tmp_path / "a.png").write_bytes(a := image(1))
    pq.write_table(
        pa.Table.from_pylist(
            [{"id": "c0", "images": [{"bytes": a, "path": None}],
              "texts": [{"user": "What?", "assistant": "A.", "source": "x"},
                        {"user": "More?", "assistant": "B."}]}]
        ),
        tmp_path / "in" / "cauldron.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({"id": ["u0", "u1"], "url": [f"file://{tmp_path}/a.png", "http://192.0.2.1/x.jpg"],
                  "caption": ["web a", "web x"]}),
        tmp_path / "urls.parquet",
    )  # fmt: skip
    assert run(str(tmp_path / "in"), str(tmp_path / "o1")) == 0
    row = Dataset.open(str(tmp_path / "o1")).read_shard(0).rows[0]
    assert row is not None and row["images"] == [a]
    assert [t["content"] for t in row["conversations"]] == ["<image>\nWhat?", "A.", "More?", "B."]
    out = tmp_path / "o2"
    assert run(str(tmp_path / "urls.parquet"), str(out), "--max-reject-ratio", "1") == 0
    rows = Dataset.open(str(out)).read_shard(0).rows
    assert [(r["id"], r["images"], r["caption"]) for r in rows if r] == [("u0", [a], "web a")]
    assert json.loads((out / "rejects.jsonl").read_text())["reason"] == "missing_image"


def test_part_names_past_five_digits_are_found() -> None:
    """A 1 TB LLaVA list at 1000 rows per part passes part 99999: `{k:05d}` grows a
    digit there, and resume must still see those parts as committed."""
    from sailvl.data.importers.parts import PART_RE, part_key

    for unit, k in ((0, 99_999), (0, 100_000), (123_456, 7)):
        m = PART_RE.match(f"{part_key(unit, k)}/{MANIFEST}")
        assert m is not None and (int(m.group(1)), int(m.group(2))) == (unit, k)
    assert PART_RE.match(f"{part_key(0, 1)}-dedup/{MANIFEST}") is None


def test_finalise_reads_no_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Duplicates are found from the ids each part manifest records: finishing a
    1 TB import must not read the terabyte again."""
    from sailvl.data.importers import finalize

    def no_reads(*a: object) -> list[str]:
        raise AssertionError("finalize read a shard")

    monkeypatch.setattr(finalize, "_ids", no_reads)
    src, exp = write_llava(tmp_path)
    out = tmp_path / "out"
    assert run(str(src), str(out), "--max-reject-ratio", "1", "--rows-per-shard", "3") == 0
    check_import(str(out), exp)


def test_progress_line_counts_rows_and_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, exp = write_llava(tmp_path)
    assert main(["data", "import", str(src), str(tmp_path / "out"), "--max-reject-ratio", "1"]) == 0
    err = capsys.readouterr().err
    rows, rejected = len(exp.samples) + len(exp.rejects), len(exp.rejects) - 1  # dup: at the end
    assert f"import: 1/1 files | {rows} rows ({rejected} rejected) |" in err
    assert " rows/s | " in err and "B/s" in err


def test_truncated_input_fails_the_import_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LLaVA list cut mid-element (an interrupted copy) cannot be read to the end: the
    import exits 1 naming the file and the byte offset, and writes no manifest."""
    src, _ = write_llava(tmp_path)
    raw = src.read_bytes()
    src.write_bytes(raw[: len(raw) * 2 // 3])
    out = tmp_path / "out"
    assert run(str(src), str(out), "--max-reject-ratio", "1") == 1
    err = capsys.readouterr().err
    assert f"failed: {src}: json:" in err and "byte" in err
    assert not (out / MANIFEST).exists()


@pytest.mark.parametrize("fmt", ["llava", "hfparquet"])
def test_fetch_threads_do_not_change_the_output(tmp_path: Path, fmt: str) -> None:
    """Images are read by a thread pool but parts are cut in row order: the manifest
    (shard digests included) and the rejects file are byte-identical to a serial run."""
    src, _ = WRITERS[fmt](tmp_path)
    outs = []
    for threads in ("1", "8"):
        out = tmp_path / f"out{threads}"
        argv = [str(src), str(out), "--max-reject-ratio", "1", "--rows-per-shard", "2"]
        assert run(*argv, "--threads", threads) == 0
        outs.append(((out / MANIFEST).read_bytes(), (out / "rejects.jsonl").read_bytes()))
    assert outs[0] == outs[1]
