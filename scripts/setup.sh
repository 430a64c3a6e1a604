#!/usr/bin/env bash
# One-step setup on a fresh machine: Debian's chromium for the browser tests, the pinned Python packages,
# and this project in editable mode. Re-running it is cheap: every step is a no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! command -v chromium >/dev/null 2>&1; then
  echo "[setup] installing Debian's chromium (the study-app tests drive it; no tool downloads its own browser)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo "[setup] Python packages (requirements.txt)"
"$PY" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -vE "^WARNING: (Location|Running pip)" || true
# face_recognition pins the source build of dlib; the prebuilt dlib-bin above stands in for it.
"$PY" -m pip install -q --disable-pip-version-check --no-deps face_recognition==1.3.0 face_recognition_models==0.3.0 \
  2>&1 | grep -vE "^WARNING: (Location|Running pip)" || true
"$PY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
  2>&1 | grep -vE "^WARNING: (Location|Running pip)" || true
"$PY" -c 'import torch, ray, streamlit, face_recognition, usgan; print(f"[setup] ready: torch {torch.__version__}, ray {ray.__version__}, streamlit {streamlit.__version__}")'
