#!/usr/bin/env bash
# Install a CJK font (Debian fonts-wqy-zenhei, 16 MB), idempotently, so the understanding
# suite's Chinese stand-ins (synthdog-zh) really render Chinese glyphs in tests and the
# demo. Without one, sailvl.data.fonts.require_cjk_font refuses with an error naming this
# package rather than rendering empty boxes or switching to English.
#
# When a CJK font is already there (this package, or any font fontconfig lists for
# `:lang=zh`) nothing runs, so a warm `make tools` costs one query. apt waits for another
# apt's lock instead of failing.
set -euo pipefail

pkg=fonts-wqy-zenhei
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
  echo "install-fonts.sh: $pkg present"
  exit 0
fi
if command -v fc-list >/dev/null && [[ -n "$(fc-list :lang=zh file 2>/dev/null)" ]]; then
  echo "install-fonts.sh: a CJK font is present: $(fc-list :lang=zh file | head -1)"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-fonts.sh: no apt-get here; install a CJK font (e.g. Noto Sans CJK) or set" \
    "SAILVL_FONT_DIRS to a folder holding one" >&2
  exit 1
fi
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
lock=(-o DPkg::Lock::Timeout=600)
$SUDO apt-get "${lock[@]}" update -qq
$SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends "$pkg"
echo "install-fonts.sh: installed $pkg"
