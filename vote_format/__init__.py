"""The long vote format: the one contract between study_app, which writes it, and analysis, which reads it.

One row per vote, times ISO 8601 UTC. The app's SQLite database serves it as the view VOTES_VIEW (and the
methods each study compares as METHODS_VIEW: study_id, method), its admin page exports it as CSV with these
columns, and the analysis reads either. One row per participant is PARTICIPANTS_VIEW, keyed by the same
pseudonymous participant_id, with the Prolific id beside it (for joining Prolific's submissions export; never
in the votes). Standard library only; imports neither product.
"""
from __future__ import annotations

import os
from pathlib import Path

VOTES_VIEW = "votes_long"
METHODS_VIEW = "methods"
COLUMNS = (
    "participant_id", "study_id", "item_id", "face_id", "expression", "item_group", "question", "method",
    "position", "is_catch", "catch_passed", "response_ms", "shown_at", "answered_at", "excluded",
    "exclude_after_failed_checks", "finished", "participant_status",
)
REQUIRED_COLUMNS = ("participant_id", "item_id", "question", "method")   # enough for a CSV from elsewhere
PARTICIPANTS_VIEW = "participant_summary"
PARTICIPANT_COLUMNS = (
    "participant_id", "study_id", "prolific_pid", "session_id", "started_at", "finished_at", "finished",
    "participant_status", "answered", "trials", "failed_checks", "excluded",
)
# What participant_status holds: all trials answered; active within the study's slot timeout; quiet longer.
PARTICIPANT_STATUSES = ("finished", "in progress", "timed out")
TEXT_COLUMNS = ("participant_id", "study_id", "item_id", "face_id", "expression", "item_group", "question", "method",
                "participant_status")

# In screen order, which is also the order of the paper's Figure 9 panels.
QUESTIONS = ("realism", "expression", "identity")
# The method label of the unaltered copy of the input on a catch trial: the known right answer.
CATCH_LABEL = "catch_correct"
# Exclude a participant at this many failed catch trials (Prolific's rule) when the votes carry no rule.
DEFAULT_MAX_FAILED_CATCH = 2

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_db_path() -> Path:
    """The study database: $USGAN_STUDY_DB if set, else <repo root>/var/study.sqlite."""
    env = os.environ.get("USGAN_STUDY_DB")
    return Path(env) if env else REPO_ROOT / "var" / "study.sqlite"


def missing_columns(columns) -> list[str]:
    """The required columns a vote table lacks."""
    return [c for c in REQUIRED_COLUMNS if c not in set(columns)]
