"""GSB caption comparison (Table 8) against the scripted chat-completions server.

The judges here are deterministic functions of the request (`ChatServer.responder`), so
results do not depend on which of the concurrent requests arrives first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sailvl.cli import main as cli_main
from sailvl.quality.compare import (
    FIRST,
    SAME,
    SECOND,
    Comparison,
    Row,
    combine,
    compare,
    join,
    parse_verdict,
)
from tests.fixtures.chat_server import ChatServer


def captions(body: dict[str, Any]) -> tuple[str, str]:
    text = body["messages"][0]["content"]
    text = text if isinstance(text, str) else text[0]["text"]
    m = re.search(r"Caption 1:\n(.*)\n\nCaption 2:\n(.*)\n\nAnswer", text, flags=re.S)
    assert m, text
    return m.group(1), m.group(2)


def longer_is_better(body: dict[str, Any]) -> str:
    """An unbiased judge: the caption with more words wins; equal length is a tie."""
    one, two = (len(c.split()) for c in captions(body))
    return "1" if one > two else "2" if two > one else "same"


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("".join(json.dumps({"id": i, "caption": c}) + "\n" for i, c in rows))
    return str(path)


A = [("1", "a red car by a brick house"), ("2", "a dog"), ("3", "two cats"), ("4", "x y")]
B = [("1", "a car"), ("2", "a brown dog on grass"), ("3", "two cats"), ("5", "only in B")]


def run_cli(tmp_path: Path, server: ChatServer, *extra: str) -> tuple[int, dict[str, Any]]:
    a = write_jsonl(tmp_path / "a.jsonl", A)
    b = write_jsonl(tmp_path / "b.jsonl", B)
    out = tmp_path / "gsb.json"
    argv = ["stats", "compare", a, b, "--judge-url", server.base_url, "--out", str(out)]
    rc = cli_main([*argv, "--concurrency", "4", "--retries", "1", *extra])
    return rc, json.loads(out.read_text()) if out.exists() else {}


def test_cli_counts_gsb_with_an_unbiased_judge(
    tmp_path: Path, chat_server: ChatServer, capsys: Any
) -> None:
    chat_server.responder = longer_is_better
    rc, res = run_cli(tmp_path, chat_server, "--model", "judge-x")
    assert rc == 0
    # id 1: A longer -> G; id 2: B longer -> B; id 3: same length -> S; 4 and 5 unpaired.
    assert (res["G"], res["S"], res["B"]) == (1, 1, 1)
    assert res["net_win_rate"] == 0.0 and res["disagree"] == 0
    assert res["failures"] == {"only_in_a": 1, "only_in_b": 1}
    assert [p["result"] for p in res["pairs"]] == ["G", "B", "S"]
    assert len(chat_server.requests) == 6  # three pairs, both orders
    assert {r["model"] for r in chat_server.requests} == {"judge-x"}
    shown = sorted(captions(r) for r in chat_server.requests if "red car" in str(r))
    assert shown == sorted([(A[0][1], B[0][1]), (B[0][1], A[0][1])])  # both orders asked
    assert "G 1  S 1  B 1  net win rate +0.0%" in capsys.readouterr().out


def test_position_biased_judge_becomes_all_same(tmp_path: Path, chat_server: ChatServer) -> None:
    chat_server.responder = lambda body: "1"  # always prefers whatever is shown first
    rc, res = run_cli(tmp_path, chat_server)
    assert rc == 0
    assert (res["G"], res["S"], res["B"]) == (0, 3, 0) and res["net_win_rate"] == 0.0
    assert res["disagree"] == 3


def test_bad_judge_output_is_counted_never_a_verdict(
    tmp_path: Path, chat_server: ChatServer
) -> None:
    def messy(body: dict[str, Any]) -> Any:
        first, second = captions(body)
        if "red car" in first:
            return "I'm sorry, I cannot compare these."
        if "red car" in second:
            return "Caption 1"  # fine on its own; the pair still fails (other order)
        if "dog" in first + second:
            return (500, "overloaded")  # every attempt fails: judge_error
        return "**Verdict**: same"

    chat_server.responder = messy
    rc, res = run_cli(tmp_path, chat_server)
    assert rc == 0
    assert (res["G"], res["S"], res["B"], res["unjudged"]) == (0, 1, 0, 2)
    assert res["failures"] == {"judge_error": 2, "only_in_a": 1, "only_in_b": 1, "refusal": 1}
    assert res["net_win_rate"] == 0.0


def test_nothing_judged_exits_1_and_bad_input_exits_2(
    tmp_path: Path, chat_server: ChatServer, capsys: Any
) -> None:
    chat_server.responder = lambda body: "the second one, I think"
    rc, res = run_cli(tmp_path, chat_server)
    assert rc == 1 and res["failures"]["unparseable"] == 6 and res["net_win_rate"] is None
    rc, _ = run_cli(tmp_path, chat_server, "--concurrency", "0")
    assert rc == 2 and "--concurrency" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"caption": "no id"}\n')
    argv = ["stats", "compare", str(bad), str(bad), "--judge-url", chat_server.base_url]
    assert cli_main(argv) == 2 and "line 1" in capsys.readouterr().err
    bad.write_text('{"id": 1, "caption": "ok"}\n{oops\n')
    assert cli_main(argv) == 2 and "line 2: not JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("1", (FIRST, None)),
        ("2.", (SECOND, None)),
        ("Caption 2", (SECOND, None)),
        ("**same**", (SAME, None)),
        ("Tie", (SAME, None)),
        ("Answer: 1", (FIRST, None)),
        ("After comparing both, my verdict is 2", (SECOND, None)),
        ("Caption 2 is better.", (SECOND, None)),
        ("caption 1 is the better one", (FIRST, None)),
        ("３", (None, "unparseable")),
        ("Caption 1 has 3 errors", (None, "unparseable")),  # prose with numbers: no guess
        ("I cannot see the image.", (None, "refusal")),
        ("", (None, "unparseable")),
    ],
)
def test_parse_verdict(reply: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_verdict(reply) == expected


def test_combine_requires_both_orders_to_agree() -> None:
    table = {
        (FIRST, SECOND): "G",
        (SECOND, FIRST): "B",
        (FIRST, FIRST): "S",
        (SECOND, SECOND): "S",
        (SAME, SAME): "S",
        (FIRST, SAME): "S",
        (SAME, FIRST): "S",
    }
    for (straight, swapped), want in table.items():
        assert combine(straight, swapped) == want


def test_join_and_images_go_with_the_request() -> None:
    out = Comparison()
    a = {"x": Row(caption="cap a", image=b"IMG"), "y": Row(caption=" ")}
    b = {"x": Row(caption="cap b"), "y": Row(caption="fine"), "z": Row(caption="z")}
    pairs = join(a, b, out)
    assert [p[0] for p in pairs] == ["x"]
    assert out.failures == {"only_in_a": 0, "only_in_b": 1, "empty_caption": 1}
    seen: list[tuple[str, bytes | None]] = []

    def ask(prompt: str, image: bytes | None) -> str:
        seen.append((prompt, image))
        return "1" if prompt.index("cap a") < prompt.index("cap b") else "2"

    res = compare(pairs, ask, concurrency=1, out=out)
    assert (res.good, res.same, res.bad) == (1, 0, 0) and res.net_win_rate == 1.0
    assert [img for _, img in seen] == [b"IMG", b"IMG"]
    assert all("image is attached" in p for p, _ in seen)
    res2 = compare(pairs, ask, with_image=False)
    assert res2.good == 1 and seen[-1][1] is None and "attached" not in seen[-1][0]


def test_concurrency_is_bounded() -> None:
    import threading
    import time

    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def ask(prompt: str, image: bytes | None) -> str:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return "same"

    pairs = [(str(i), Row(caption=f"a{i}"), Row(caption=f"b{i}")) for i in range(10)]
    res = compare(pairs, ask, concurrency=3)
    assert res.same == 10 and 1 <= state["max"] <= 3


def test_cli_on_two_datasets_sends_the_image(tmp_path: Path, chat_server: ChatServer) -> None:
    import base64

    from sailvl.data.dataset import DatasetWriter, WriterConfig

    for side, rows in (("a", A), ("b", B)):
        cfg = WriterConfig(max_samples_per_shard=2)  # several shards per side
        with DatasetWriter(str(tmp_path / side), cfg) as w:
            for i, cap in rows:
                w.write({"id": i, "caption": cap, "images": [f"IMG-{i}".encode()]})
    chat_server.responder = longer_is_better
    argv = ["stats", "compare", str(tmp_path / "a"), str(tmp_path / "b")]
    out = tmp_path / "gsb.json"
    assert cli_main([*argv, "--judge-url", chat_server.base_url, "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (res["G"], res["S"], res["B"]) == (1, 1, 1)
    for body in chat_server.requests:
        text_part, image_part = body["messages"][0]["content"]
        key = next(i for i, cap in A if cap in text_part["text"])
        url = image_part["image_url"]["url"]
        assert base64.b64decode(url.split(",", 1)[1]) == f"IMG-{key}".encode()
