"""face_recognition and dlib (face alignment, the identity metrics), imported so that a missing piece is one error.

face_recognition prints a hint and calls quit() when face_recognition_models does not import (not installed,
or pkg_resources gone with a newer setuptools); quit() exits with status 0, so `python -m usgan.synthesize`
would end "successfully" having written nothing. Importing each piece here first turns that into a
FaceLibraryMissing naming the fix, which the CLIs print as one `error:` line with exit code 2.

    from usgan.face_lib import dlib, face_api, face_recognition
"""
from __future__ import annotations

import threading

from .errors import FaceLibraryMissing

SETUP = 'bash scripts/setup.sh (or pip install -e ".[eval]" in the checkout)'



try:
    import dlib
except ImportError as e:
    raise FaceLibraryMissing(f"dlib is not importable ({e}); it comes prebuilt as dlib-bin: {SETUP}") from None

try:
    import face_recognition_models  # noqa: F401  (imported for its failure; face_recognition would quit() instead)
except Exception as e:  # pkg_resources missing raises ModuleNotFoundError from inside, a broken install other errors
    raise FaceLibraryMissing(f"face_recognition's model files (face_recognition_models) are not importable ({e}): "
                             f"{SETUP}") from None

try:
    import face_recognition
    import face_recognition.api as face_api
except (ImportError, SystemExit) as e:
    # --no-deps: pip would otherwise build dlib from source although dlib-bin already provides it.
    raise FaceLibraryMissing(f"face_recognition is not importable ({e or 'it quit'}): "
                             "pip install --no-deps face_recognition==1.3.0, or " + SETUP) from None

# face_recognition keeps one dlib detector and one landmark model as module globals; two threads running them at
# once (the image cache aligns photos on a thread pool) crash the process (SIGSEGV / SIGABRT inside dlib).
dlib_lock = threading.Lock()

__all__ = ["dlib", "dlib_lock", "face_api", "face_recognition"]
