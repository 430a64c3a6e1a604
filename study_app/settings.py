"""Paths, names and limits shared by the builder, the participant page and the admin page."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vote_format import CATCH_LABEL, QUESTIONS, default_db_path  # noqa: F401 - the app's names for the contract's

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_STIMULI_DIR = PACKAGE_DIR / "demo_stimuli"

EXPRESSIONS = ("afraid", "angry", "disgusted", "happy", "neutral", "sad", "surprised")

QUESTION_TEXT = {
    "realism": "Which image looks most realistic (without considering the expression)?",
    "expression": "Which image shows the most convincing **{expression}** expression?",
    "identity": "Which image best preserves the identity of the input face?",
}

# A catch trial asks only this, with an explicit instruction to pick the copy of the input (Prolific's rule:
# instructed checks only); one vote row per catch trial, so failed rows count failed checks.
CATCH_QUESTIONS = ("identity",)
# The catch trial's question: the instruction is the question's own label, not a banner above an unchanged
# question (Prolific: a check tests attention to the question itself).
CATCH_QUESTION_TEXT = {
    "identity": "Attention check: for this question, choose the image that is exactly the same as the input "
                "face on the left.",
}

# What anyone sees when a page fails; the details (paths, SQL, traceback) go to the server's log only.
SERVER_ERROR = ("Something went wrong on our side. Your answers so far are saved; please reload the page "
                "in a minute.")

# How participants arrive: Prolific ids checked against the study's Prolific study; an anonymous link (labs);
# a pilot (anonymous or Prolific preview ids, no study id check, never redirected).
RECRUITMENT_MODES = ("prolific", "link", "pilot")

# Set to 1 when a reverse proxy is in front: the client's address is then read from its X-Forwarded-For.
PROXY_ENV = "USGAN_STUDY_BEHIND_PROXY"

# Prolific's completion redirect; {code} is the study's completion code.
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"


def demo_enabled() -> bool:
    """The demo study is served only when asked for: `--demo` after `--` on the command line or USGAN_STUDY_DEMO=1."""
    return "--demo" in sys.argv[1:] or os.environ.get("USGAN_STUDY_DEMO", "") in ("1", "true", "yes")


def demo_stimuli_dir() -> Path:
    """Folder the demo study is built from; `USGAN_STUDY_DEMO_DIR` points it elsewhere (tests, forks)."""
    env = os.environ.get("USGAN_STUDY_DEMO_DIR")
    return Path(env) if env else DEMO_STIMULI_DIR
