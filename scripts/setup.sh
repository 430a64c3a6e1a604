#!/usr/bin/env bash
# One-step setup on a fresh Debian/Ubuntu machine: a virtual environment in .venv holding this project (editable).
#   bash scripts/setup.sh          every extra, face_recognition, and Debian's chromium (the browser tests drive it)
#   bash scripts/setup.sh train    only what `python -m usgan.train` needs (the `train` extra): no browser,
#                                  a shorter install; a later plain run adds the rest to the same .venv
# A venv because Debian's python3 is "externally managed" (PEP 668): its pip refuses to install anything.
# Re-running is cheap: the pip step runs again only when pyproject.toml or this script changed, or an
# import check fails. Any failed step stops the script with one line naming the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-all}"
case "$MODE" in
  all|train) ;;
  *) echo "[setup] error: unknown part '$MODE': run bash scripts/setup.sh (everything) or bash scripts/setup.sh train" >&2
     exit 2 ;;
esac
RERUN="bash scripts/setup.sh"; [ "$MODE" = all ] || RERUN="$RERUN $MODE"

PY="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.usgan-setup"
# The one package pip cannot be told about in pyproject.toml: it requires `dlib`, which pip would compile
# from source; the `eval` extra brings the same library prebuilt (dlib-bin), so this goes in with --no-deps.
FACE_RECOGNITION="face_recognition==1.3.0"

die() { echo "[setup] error: $*" >&2; exit 1; }

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root to install $*: run as root, or: apt-get install -y $*"
    sudo="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || die "no apt-get here: install $* with this system's package manager"
  echo "[setup] apt-get install $*"
  $sudo apt-get update -qq >/dev/null || die "apt-get update failed: check the network or /etc/apt/sources.list"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed: run it yourself to see why"
}

command -v "$PY" >/dev/null 2>&1 || die "no $PY on PATH: apt-get install -y python3 python3-venv"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); this project needs >= 3.11: set PYTHON=/path/to/python3.11"

# The study-app tests drive Debian's chromium through Playwright; no tool downloads a browser of its own.
[ "$MODE" = train ] || [ -x /usr/bin/chromium ] || apt_install chromium

# torch.compile (speed.compile, on in the demo) builds C++ kernels that include Python.h. Without a compiler or the
# headers training still runs, eager and slower, so a failed install here only warns.
PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
PYDEV="python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev"
missing=""
command -v g++ >/dev/null 2>&1 || missing="g++"
[ -f "$PYINC/Python.h" ] || missing="$missing $PYDEV"
if [ -n "$missing" ]; then
  ( apt_install $missing ) || echo "[setup] warning: no$missing: training will run without torch.compile (slower)" >&2
fi

# Debian ships venv's pip bootstrap (ensurepip) separately, in python3-venv.
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3-venv
    "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1 \
      || die "$PY still has no ensurepip: apt-get install -y python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
  fi
  rm -rf "$VENV"                       # a half-made venv (no pip) would otherwise stay broken
  echo "[setup] creating $VENV with $(command -v "$PY")"
  "$PY" -m venv "$VENV" || die "$PY -m venv $VENV failed: see above"
fi

want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) $("$VENV/bin/python" -V 2>&1)"
ready() {
  if [ "$MODE" = train ]; then
    "$VENV/bin/python" -c 'import torch, ray, ray.train.torch, usgan.train
print(f"[setup] ready in .venv for training: torch {torch.__version__}, ray {ray.__version__}")'
    return
  fi
  # face_recognition_models first: face_recognition calls quit() (exit 0) when the models do not import.
  "$VENV/bin/python" -c 'import torch, ray, streamlit, playwright, pytest, face_recognition_models, face_recognition
import usgan, study_app, analysis
print(f"[setup] ready in .venv: torch {torch.__version__}, ray {ray.__version__}, streamlit {streamlit.__version__}")'
}
# The stamp names what was installed: everything also serves `train`, `train` alone does not serve everything.
done_as="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$done_as" = "$want all" ] || [ "$done_as" = "$want $MODE" ]; then
  ready 2>/dev/null && exit 0
fi

if [ "$MODE" = train ]; then
  echo "[setup] installing this project for training into $VENV (a minute or two the first time)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[train]" \
    || die "pip could not install .[train] (its error is above): fix that, then run $RERUN again"
else
  echo "[setup] installing this project with all extras into $VENV (minutes the first time)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[all]" \
    || die "pip could not install .[all] (its error is above): fix that, then run bash scripts/setup.sh again"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$FACE_RECOGNITION" \
    || die "pip could not install $FACE_RECOGNITION (its error is above): fix that, then run bash scripts/setup.sh again"
fi
ready || die "$VENV is incomplete (the import error is above): rm -rf $VENV and run $RERUN again"
echo "$want $MODE" > "$STAMP"
