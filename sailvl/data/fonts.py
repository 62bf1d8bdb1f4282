"""Font discovery for the synthetic renderer.

A fresh machine or slim image may have no TTFs at all, so PIL's built-in default font
(`ImageFont.load_default(size)`, scalable since Pillow 10.1) is always in the list as
`None`. System fonts are found under the usual directories (and `SAILVL_FONT_DIRS`,
`:`-separated). A font counts as CJK only if its cmap really maps the probe characters
(checked with fontTools when available, else by well-known file names), so Chinese
samples are generated only when they can be rendered, never as tofu boxes.

Where Chinese text is *required* (the understanding suite's Chinese stand-ins),
:func:`require_cjk_font` returns a CJK font or raises :class:`MissingFontError` naming
the Debian package to install (``make tools`` installs it: ``tests/install-fonts.sh``),
rather than letting the caller fall back to English.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/System/Library/Fonts",
    "/Library/Fonts",
    os.path.expanduser("~/.fonts"),
    os.path.expanduser("~/.local/share/fonts"),
)
FONT_EXTS = (".ttf", ".otf", ".ttc")
CJK_PROBE = "中文字体"
CJK_PACKAGES = ("fonts-wqy-zenhei", "fonts-noto-cjk")
"""Debian packages that provide a CJK font (the first is what ``make tools`` installs)."""
CJK_NAME_HINTS = ("cjk", "wqy", "droidsansfallback", "simhei", "simsun", "msyh", "pingfang")


@dataclass(frozen=True)
class FontSet:
    """Usable fonts: `latin` always holds `None` (PIL's default) plus system fonts."""

    latin: tuple[str | None, ...]
    cjk: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def _codepoints(path: str) -> frozenset[int] | None:
    """Code points the font maps (a collection's first font), read once per file and
    process: a CJK collection's cmap takes ~0.7 s to parse, and every probe reuses it.
    None when fontTools is not installed; empty for an unreadable file."""
    try:
        from fontTools.ttLib import TTCollection, TTFont
    except ImportError:
        return None
    try:
        if path.lower().endswith(".ttc"):
            font = TTCollection(path, lazy=True).fonts[0]
        else:
            font = TTFont(path, lazy=True)
        return frozenset(font.getBestCmap() or {})
    except Exception:  # unreadable font file: treat as covering nothing
        return frozenset()


def _covers(path: str, text: str) -> bool:
    cmap = _codepoints(path)
    if cmap is None:
        return any(h in os.path.basename(path).lower() for h in CJK_NAME_HINTS)
    return all(ord(ch) in cmap for ch in text)


@functools.lru_cache(maxsize=4)
def discover_fonts(extra_dirs: tuple[str, ...] = ()) -> FontSet:
    """Scan the font directories once per process (sorted: deterministic order)."""
    env_dirs = tuple(d for d in os.environ.get("SAILVL_FONT_DIRS", "").split(":") if d)
    paths: list[str] = []
    for root in extra_dirs + env_dirs + FONT_DIRS:
        if not os.path.isdir(root):
            continue
        for dirpath, _dirs, files in os.walk(root):
            paths.extend(os.path.join(dirpath, f) for f in files if f.lower().endswith(FONT_EXTS))
    paths = sorted(set(paths))
    latin = [p for p in paths if _covers(p, "AaZz09")]
    cjk = [p for p in paths if _covers(p, CJK_PROBE)]
    return FontSet(latin=(None, *latin), cjk=tuple(cjk))


@functools.lru_cache(maxsize=512)
def load_font(path: str | None, size: int) -> Any:
    """A PIL font at `size` px; `None` is PIL's built-in default font."""
    from PIL import ImageFont

    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size=size)


class MissingFontError(RuntimeError):
    """Chinese text was requested and no font on this machine has CJK glyphs."""


def require_cjk_font(fonts: FontSet | None = None) -> str:
    """The first CJK font found, or :class:`MissingFontError` saying how to get one."""
    found = fonts if fonts is not None else discover_fonts()
    if found.cjk:
        return found.cjk[0]
    raise MissingFontError(
        f"no font with Chinese glyphs ({CJK_PROBE!r}) under {':'.join(FONT_DIRS)} or "
        f"SAILVL_FONT_DIRS: Chinese text would render as empty boxes. Install one "
        f"(`apt-get install {CJK_PACKAGES[0]}` or {CJK_PACKAGES[1]}; `make tools` does it) "
        "or point SAILVL_FONT_DIRS at a folder holding a CJK .ttf/.ttc/.otf"
    )
