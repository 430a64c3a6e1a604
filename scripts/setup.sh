#!/usr/bin/env bash
# One-step setup on a fresh machine: system browser for the UI tests, Python packages, this project.
# Safe to re-run: every step is skipped or is a no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if ! command -v chromium >/dev/null 2>&1; then
  echo "[setup] installing Debian's chromium (browser tests drive it; no tool downloads its own browser)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

if ! "$PY" -c "import usgan, ray, streamlit, face_recognition" >/dev/null 2>&1 \
   || ! "$PY" -m pip install -q --dry-run -r requirements.txt 2>/dev/null | grep -q "^Would install$\|^$" ; then
  echo "[setup] installing Python packages (requirements.txt)"
  "$PY" -m pip install -q -r requirements.txt
  # face_recognition pins the source dlib; its wheel and its model weights go in without dependencies.
  "$PY" -m pip install -q --no-deps face_recognition==1.3.0 face_recognition_models==0.3.0
  "$PY" -m pip install -q --no-deps -e .
fi
echo "[setup] ready: $("$PY" -c 'import torch, ray; print(f"torch {torch.__version__}, ray {ray.__version__}")')"
