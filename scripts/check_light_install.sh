#!/usr/bin/env bash
# A study server's install, checked for real: a fresh venv with only `pip install -e ".[study,analysis]"`
# (no torch, no Ray), then the study app serves its demo to Debian's chromium and the analysis script runs.
#
#   bash scripts/check_light_install.sh          # about 3 minutes on 2 cores with a warm pip cache
#
# Not part of pytest because it installs a second environment (~0.5 GB); tests/test_install.py checks the
# same split in seconds by making torch unimportable. The venv is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
die() { echo "[light] error: $*" >&2; exit 1; }

[ -x /usr/bin/chromium ] || die "Debian's chromium is not at /usr/bin/chromium: apt-get install -y chromium"
VENV="$(mktemp -d /tmp/usgan-light-XXXXXX)"
trap 'rm -rf "$VENV"' EXIT
"$PY" -m venv "$VENV" || die "$PY -m venv failed: apt-get install -y python3-venv"
V="$VENV/bin/python"

echo "[light] pip install -e .[study,analysis] into $VENV"
"$V" -m pip install -q --disable-pip-version-check -e ".[study,analysis]" || die "pip failed (its error is above)"
for heavy in torch torchvision ray; do
  if "$V" -c "import $heavy" 2>/dev/null; then die "$heavy is importable after .[study,analysis]: an extra pulls it in"; fi
done
echo "[light] torch, torchvision and ray are not importable"

# The tests' own tools come after that check; pytest and playwright bring no torch either.
"$V" -m pip install -q --disable-pip-version-check -e ".[study,analysis,dev]" || die "pip failed (its error is above)"
"$V" -c "import torch" 2>/dev/null && die "torch is importable after .[dev]"

# The browser tests serve `streamlit run study_app/main.py` (its demo study) and click through it in chromium;
# the analysis CLI tests run `python analysis/preferences.py` from the repository root.
"$V" -m pytest -q -p no:cacheprovider tests/study_app/test_browser.py tests/analysis/test_cli.py \
  || die "the study app or the analysis fails without torch (pytest's report is above)"
echo "[light] ok: the study app and the analysis run from .[study,analysis] alone"
